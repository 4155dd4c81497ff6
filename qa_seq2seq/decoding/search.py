"""Greedy, beam and sampling search over a trained model, batched.

The model is reached through three calls only (see ``Seq2Seq``): ``encode(src, src_lengths)`` once
per question, ``step(tokens, state)`` per output position, and ``reorder_state(state, order)`` to
select, repeat or drop batch rows. Questions whose answers are complete leave the batch at once,
so later steps run on fewer rows; the search stops when every question is done.

Shared options:
    max_length: most answer tokens (``<eos>`` included); ``max_length_ratio`` additionally caps
        it at ``ceil(ratio * question length)``. A hypothesis cut there is returned with
        ``finished=False``.
    min_length: ``<eos>`` is blocked before this many answer tokens.

Padding and ``<bos>`` are never emitted. Blocking happens after the softmax, so a returned
``score`` is exactly the model's teacher-forced log-probability of the returned tokens (plus
``<eos>`` when finished).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from qa_seq2seq.decoding import search_loop
from qa_seq2seq.decoding.hypotheses import Hypothesis
from qa_seq2seq.errors import ConfigError

if TYPE_CHECKING:
    from qa_seq2seq.network.rnn import State


class SearchModel(Protocol):
    """What a search needs of a model: ``encode``, ``step`` and ``reorder_state``."""
    def encode(self, src: Tensor, src_lengths: Tensor): ...  # also initial_state=, if searched with one
    def step(self, tokens: Tensor, state) -> tuple[Tensor, object]: ...
    def reorder_state(self, state, order: Tensor): ...


class TorchArrays:
    """:class:`qa_seq2seq.decoding.arrays.Arrays` on torch tensors (on their device)."""

    def full(self, shape, value, like):
        dtype = torch.bool if isinstance(value, bool) else \
            torch.int64 if isinstance(value, int) else torch.float32
        return torch.full(shape, value, dtype=dtype, device=like.device)

    def of(self, values, like):
        return torch.tensor(values, dtype=torch.int64, device=like.device)

    def arange(self, n, like):
        return torch.arange(n, device=like.device)

    def log_softmax(self, logits):
        return F.log_softmax(logits.float(), -1)

    def top(self, x, k):
        if k == 1:  # the first of equal maxima, as documented for max
            return x.max(1, keepdim=True)
        if k < x.size(1):
            # topk leaves open which of several values equal to the k-th it takes: it took the
            # right ones unless the (k+1)-th equals the k-th; then take the first of them.
            values, columns = x.topk(k + 1, 1)
            columns = columns[:, :k]
            if bool((values[:, k - 1] == values[:, k]).any()):
                kth = values[:, k - 1:k]
                above, equal = x > kth, x == kth
                chosen = above | (equal & (equal.cumsum(1) <= k - above.sum(1, keepdim=True)))
                columns = chosen.nonzero()[:, 1].view(-1, k)
        else:
            columns = torch.arange(x.size(1), device=x.device).expand_as(x)
        columns = columns.sort(1).values
        values, order = x.gather(1, columns).sort(dim=1, descending=True, stable=True)
        return values, columns.gather(1, order)

    def gather(self, x, columns):
        return x.gather(1, columns)

    def scatter_true(self, like, columns):
        return torch.zeros(like.shape, dtype=torch.bool, device=like.device).scatter(1, columns, True)

    def cat(self, arrays):
        return torch.cat(arrays, 1)

    def repeat_rows(self, x, k):
        return x.repeat_interleave(k, 0)

    def where(self, mask):
        return mask.nonzero()[:, 0]

    def isfinite(self, x):
        return torch.isfinite(x)


TORCH = TorchArrays()


def _encode(model: SearchModel, src: Tensor, src_lengths: Tensor, initial_state: State | None):
    """``model.encode``; a model is only asked for ``initial_state`` when one is given."""
    if initial_state is None:
        return model.encode(src, src_lengths)
    return model.encode(src, src_lengths, initial_state=initial_state)


@torch.inference_mode()
def greedy_search(model: SearchModel, src: Tensor, src_lengths: Tensor, max_length: int = 64,
                  max_length_ratio: float | None = None, min_length: int = 0,
                  initial_state: State | None = None) -> list[list[Hypothesis]]:
    """The most likely token at every step. Returns one hypothesis per question: (B, 1).

    ``initial_state`` (every search takes it): the decoder's ``(h, c)``, each (L, B, H),
    replacing the bridged encoder state, as in teacher-forced ``Seq2Seq.forward``.
    """
    return search_loop.single_path(
        model, TORCH, _encode(model, src, src_lengths, initial_state), src_lengths.to(src.device),
        lambda log_probs: search_loop.greedy(TORCH, log_probs), max_length, max_length_ratio,
        min_length)


@torch.inference_mode()
def sample(model: SearchModel, src: Tensor, src_lengths: Tensor, temperature: float = 1.0,
           top_k: int = 0, top_p: float = 1.0, seed: int | None = None, max_length: int = 64,
           max_length_ratio: float | None = None, min_length: int = 0,
           initial_state: State | None = None) -> list[list[Hypothesis]]:
    """Ancestral sampling from the tempered, top-k / nucleus (top-p) filtered distribution.

    ``seed`` makes the draw reproducible. Scores are the model's own (unfiltered) log-probabilities.
    """
    if temperature <= 0:
        raise ConfigError(f"decode.temperature must be > 0 (use decode=greedy for argmax), got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"decode.top_p must be in (0, 1], got {top_p}")
    generator = torch.Generator(device=src.device)
    generator.manual_seed(torch.seed() if seed is None else seed)

    def choose(log_probs: Tensor) -> tuple[Tensor, Tensor]:
        filtered = log_probs / temperature
        if top_k > 0:
            kth = filtered.topk(min(top_k, filtered.size(-1)), -1).values[:, -1:]
            filtered = filtered.masked_fill(filtered < kth, -math.inf)
        if top_p < 1:
            ordered, order = filtered.sort(-1, descending=True)
            cumulative = ordered.softmax(-1).cumsum(-1)
            drop = cumulative - ordered.softmax(-1) >= top_p  # keep the smallest set reaching p
            filtered = filtered.scatter(-1, order, ordered.masked_fill(drop, -math.inf))
        token = torch.multinomial(filtered.softmax(-1), 1, generator=generator)[:, 0]
        return log_probs.gather(1, token[:, None])[:, 0], token

    return search_loop.single_path(
        model, TORCH, _encode(model, src, src_lengths, initial_state), src_lengths.to(src.device),
        choose, max_length, max_length_ratio, min_length)


@torch.inference_mode()
def beam_search(model: SearchModel, src: Tensor, src_lengths: Tensor, beam_size: int = 5,
                n_best: int = 1, max_length: int = 64, max_length_ratio: float | None = None,
                min_length: int = 0, length_penalty: str = "none", alpha: float = 0.6,
                no_repeat_ngram_size: int = 0,
                initial_state: State | None = None) -> list[list[Hypothesis]]:
    """Beam search (qa_seq2seq.decoding.search_loop.beam) over batch x beam rows.

    Args:
        beam_size: hypotheses kept per question; ``n_best`` (<= beam_size) are returned, best
            first.
        length_penalty: ``none`` ranks by total log-probability; ``average`` by log-probability
            per token; ``gnmt`` by score / ((5 + len) / 6) ** alpha (Wu et al. 2016).
        no_repeat_ngram_size: if > 0, no n-gram of this size occurs twice in an answer.
    """
    return search_loop.beam(
        model, TORCH, _encode(model, src, src_lengths, initial_state), src_lengths.to(src.device),
        beam_size, n_best, max_length, max_length_ratio, min_length, length_penalty, alpha,
        no_repeat_ngram_size)
