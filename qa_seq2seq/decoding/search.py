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

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from qa_seq2seq.decoding.hypotheses import (
    Hypothesis,
    block_repeated_ngrams,
    check_beam_options,
    hypothesis,
    is_done,
)
from qa_seq2seq.errors import ConfigError

if TYPE_CHECKING:
    from qa_seq2seq.network.rnn import State

class SearchModel(Protocol):
    def encode(self, src: Tensor, src_lengths: Tensor): ...  # also initial_state=, if searched with one
    def step(self, tokens: Tensor, state) -> tuple[Tensor, object]: ...
    def reorder_state(self, state, order: Tensor): ...


def _encode(model: SearchModel, src: Tensor, src_lengths: Tensor, initial_state: State | None):
    """``model.encode``; a model is only asked for ``initial_state`` when one is given."""
    if initial_state is None:
        return model.encode(src, src_lengths)
    return model.encode(src, src_lengths, initial_state=initial_state)


def _limits(src_lengths: Tensor, max_length: int, max_length_ratio: float | None) -> Tensor:
    """Per-question cap on answer tokens (B,)."""
    if max_length < 1:
        raise ConfigError(f"decode.max_length must be >= 1, got {max_length}")
    limits = torch.full_like(src_lengths, max_length)
    if max_length_ratio is not None:
        relative = torch.ceil(src_lengths.float() * max_length_ratio).long().clamp(min=1)
        limits = torch.minimum(limits, relative)
    return limits


def _log_probs(model: SearchModel, tokens: Tensor, state, t: int, min_length: int):
    """One step: log-probabilities (rows, V) with pad/bos (and early eos) blocked."""
    logits, state = model.step(tokens, state)
    log_probs = F.log_softmax(logits.float(), -1)
    log_probs[:, PAD_ID] = -math.inf
    log_probs[:, BOS_ID] = -math.inf
    if t < min_length:
        log_probs[:, EOS_ID] = -math.inf
    return log_probs, state


@torch.inference_mode()
def greedy_search(model: SearchModel, src: Tensor, src_lengths: Tensor, max_length: int = 64,
                  max_length_ratio: float | None = None, min_length: int = 0,
                  initial_state: State | None = None) -> list[list[Hypothesis]]:
    """The most likely token at every step. Returns one hypothesis per question: (B, 1).

    ``initial_state`` (every search takes it): the decoder's ``(h, c)``, each (L, B, H),
    replacing the bridged encoder state, as in teacher-forced ``Seq2Seq.forward``.
    """
    return _single_path(model, src, src_lengths, max_length, max_length_ratio, min_length,
                        initial_state, choose=lambda log_probs: log_probs.max(-1))


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

    return _single_path(model, src, src_lengths, max_length, max_length_ratio, min_length,
                        initial_state, choose)


def _single_path(model, src, src_lengths, max_length, max_length_ratio, min_length,
                 initial_state, choose):
    """One token per question per step, chosen by ``choose(log_probs) -> (log_prob, token)``."""
    batch = src.size(0)
    limits = _limits(src_lengths, max_length, max_length_ratio).to(src.device)
    steps = int(limits.max())
    out_tokens = src.new_zeros(batch, steps)
    out_log_probs = torch.zeros(batch, steps, device=src.device)
    lengths = src.new_zeros(batch)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    alive = torch.arange(batch, device=src.device)  # question of each row
    tokens = src.new_full((batch,), BOS_ID)
    state = _encode(model, src, src_lengths, initial_state)
    for t in range(steps):
        log_probs, state = _log_probs(model, tokens, state, t, min_length)
        log_prob, tokens = choose(log_probs)
        out_tokens[alive, t], out_log_probs[alive, t] = tokens, log_prob
        ended = tokens == EOS_ID
        done = ended | (t + 1 >= limits[alive])
        lengths[alive], finished[alive] = t + 1, ended
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero()[:, 0]
            alive, tokens = alive[keep], tokens[keep]
            state = model.reorder_state(state, keep)
    tokens_, log_probs_ = out_tokens.tolist(), out_log_probs.tolist()  # one copy, not B
    return [[hypothesis(tokens_[i][:n], log_probs_[i][:n], done, "none", 0.0)]
            for i, (n, done) in enumerate(zip(lengths.tolist(), finished.tolist()))]


@torch.inference_mode()
def beam_search(model: SearchModel, src: Tensor, src_lengths: Tensor, beam_size: int = 5,
                n_best: int = 1, max_length: int = 64, max_length_ratio: float | None = None,
                min_length: int = 0, length_penalty: str = "none", alpha: float = 0.6,
                no_repeat_ngram_size: int = 0,
                initial_state: State | None = None) -> list[list[Hypothesis]]:
    """Beam search over batch x beam rows, flattened into one dimension.

    Args:
        beam_size: hypotheses kept per question; ``n_best`` (<= beam_size) are returned, best
            first.
        length_penalty: ``none`` ranks by total log-probability; ``average`` by log-probability
            per token; ``gnmt`` by score / ((5 + len) / 6) ** alpha (Wu et al. 2016).
        no_repeat_ngram_size: if > 0, no n-gram of this size occurs twice in an answer.

    A question stops when its ``n_best`` finished hypotheses cannot be beaten by any live one:
    with ``length_penalty=none`` this is exact (scores only fall); with a penalty the bound
    assumes the live hypothesis grows to the length limit, and the search also stops once
    ``beam_size`` hypotheses have finished (as fairseq does).
    """
    check_beam_options(beam_size, n_best, length_penalty)
    batch, k, device = src.size(0), beam_size, src.device
    limits = _limits(src_lengths, max_length, max_length_ratio).to(device)
    state = _encode(model, src, src_lengths, initial_state)  # one row per question until t = 1
    alive = torch.arange(batch, device=device)  # question of each block of rows (1, then k)
    scores = torch.full((batch, k), -math.inf, device=device)
    scores[:, 0] = 0.0  # the first step expands one beam only
    history = src.new_zeros(batch * k, 0)
    history_log_probs = torch.zeros(batch * k, 0, device=device)
    tokens = src.new_full((batch,), BOS_ID)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for t in range(int(limits.max())):
        log_probs, state = _log_probs(model, tokens, state, t, min_length)
        if t == 0:  # the k beams of a question are one: run the decoder once, copy the result
            log_probs = log_probs.repeat_interleave(k, 0)
        vocab, questions = log_probs.size(1), alive.numel()
        if no_repeat_ngram_size > 0:
            block_repeated_ngrams(log_probs, history, no_repeat_ngram_size)
        candidates = (scores[:, :, None] + log_probs.view(questions, k, vocab)).view(questions, -1)
        top_scores, top_ids = candidates.topk(min(2 * k, candidates.size(1)), dim=1)  # (b, 2k)
        rows = torch.div(top_ids, vocab, rounding_mode="floor") + (
            torch.arange(questions, device=device) * k)[:, None]
        top_tokens = top_ids % vocab
        top_log_probs = log_probs[rows, top_tokens]
        is_eos = (top_tokens == EOS_ID) & torch.isfinite(top_scores)
        at_limit = t + 1 >= limits[alive]  # (b,)
        # The k best candidates that do not end, per question (at least k of the 2k do not).
        rank = torch.arange(top_ids.size(1), device=device).expand_as(top_ids)
        keep = (rank + is_eos * top_ids.size(1)).topk(k, dim=1, largest=False).indices  # (b, k)
        # Candidates that finish now: <eos> among the k best, or every kept one at the limit.
        ending = is_eos & (rank < k)
        limit_ending = torch.zeros_like(ending).scatter(1, keep, True) & at_limit[:, None] & (
            torch.isfinite(top_scores))
        # Host-side bookkeeping reads whole tensors once per step (``tolist``), not element by
        # element: at batch 64 the per-element reads cost as much as the decoder step.
        alive_ = alive.tolist()
        if ended := (ending | limit_ending).nonzero().tolist():
            rows_, tokens_ = rows.tolist(), top_tokens.tolist()
            log_probs_, eos_ = top_log_probs.tolist(), is_eos.tolist()
            for q, c in ended:
                row = rows_[q][c]
                finished[alive_[q]].append(hypothesis(
                    history[row].tolist() + [tokens_[q][c]],
                    history_log_probs[row].tolist() + [log_probs_[q][c]],
                    eos_[q][c], length_penalty, alpha))
        scores = top_scores.gather(1, keep)
        done = at_limit | torch.tensor(
            [is_done(finished[a], best, n_best, k, limit, length_penalty, alpha)
             for a, best, limit in zip(alive_, scores[:, 0].tolist(), limits[alive].tolist())],
            dtype=torch.bool, device=device)
        if bool(done.all()):
            break
        active = (~done).nonzero()[:, 0]
        order = rows.gather(1, keep)[active].reshape(-1)  # (b' * k,) source rows
        alive, scores = alive[active], scores[active]
        tokens = top_tokens.gather(1, keep)[active].reshape(-1)
        history = torch.cat([history[order], tokens[:, None]], 1)
        history_log_probs = torch.cat(
            [history_log_probs[order], top_log_probs.gather(1, keep)[active].reshape(-1, 1)], 1)
        state = model.reorder_state(state, order if t else order // k)
    return [sorted(hyps, key=lambda h: -h.normalized_score)[:n_best] for hyps in finished]
