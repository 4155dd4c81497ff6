"""Batches (padded tensors of questions and answers) and length-bucketed batching: padding
kept small, order still random.

Training: the (shuffled) indices are cut into windows of ``window`` batches; each window is sorted
by length and cut into batches; the batches are shuffled. Evaluation: the whole split is sorted by
length, and each batch carries row indices so results can be put back in input order.

Rows are sorted by (question length, answer length); questions and answers are padded separately,
to the longest of each in the batch. Batches hold ``batch_size`` rows, or, with ``max_tokens``, as
many rows as fit in that many padded tokens (question + answer), at most ``batch_size``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler, Sampler

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from qa_seq2seq.errors import ConfigError

T = TypeVar("T")


class Batch(NamedTuple):
    """A padded batch: question ids, teacher-forcing input and target, and each row's place in its split."""
    src: Tensor  # (B, S) question ids, right-padded with PAD_ID
    src_lengths: Tensor  # (B,)
    tgt_in: Tensor  # (B, T) <bos> answer, padded
    tgt_out: Tensor  # (B, T) answer <eos>, padded
    index: Tensor  # (B,) row numbers in the split, to restore input order


def collate(rows: list[dict[str, Any]]) -> Batch:
    """Pad a list of ``{"src_ids", "tgt_ids", "index"}`` rows into a :class:`Batch`."""
    src, src_lengths = pad([r["src_ids"] for r in rows], PAD_ID)
    tgt_in, _ = pad([[BOS_ID, *r["tgt_ids"]] for r in rows], PAD_ID)
    tgt_out, _ = pad([[*r["tgt_ids"], EOS_ID] for r in rows], PAD_ID)
    return Batch(src, src_lengths, tgt_in, tgt_out, torch.tensor([r["index"] for r in rows]))


def pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad id lists into (B, longest) and return it with the lengths (B,)."""
    lengths = [len(s) for s in sequences]
    longest = max(lengths)
    # One tensor from padded lists: a tensor per row cost most of a batch's collate time.
    padded = torch.tensor([[*s, *[pad_id] * (longest - len(s))] for s in sequences])
    return padded, torch.tensor(lengths)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's batch order: every (seed, epoch) its own, reproducibly."""
    return seed * 100_003 + epoch


def bucket(rows: Sequence[T], lengths: Callable[[T], tuple[int, int]], batch_size: int,
           max_tokens: int | None = None) -> list[list[T]]:
    """The length-bucketing of every loader: ``rows`` sorted by ``lengths`` (question tokens,
    answer tokens) and cut into consecutive batches of ``batch_size`` rows, or, with
    ``max_tokens``, of as many rows as fit in that many padded tokens (at most ``batch_size``)."""
    ordered = sorted(rows, key=lengths)
    if max_tokens is None:
        return [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]
    batches: list[list[T]] = []
    current: list[T] = []
    src_max = tgt_max = 0
    for row in ordered:
        src, tgt = lengths(row)
        grown_src, grown_tgt = max(src_max, src), max(tgt_max, tgt)
        if current and ((grown_src + grown_tgt) * (len(current) + 1) > max_tokens
                        or len(current) == batch_size):
            batches.append(current)
            current, grown_src, grown_tgt = [], src, tgt
        current.append(row)
        src_max, tgt_max = grown_src, grown_tgt
    return batches + ([current] if current else [])


class _Indices(Sequence):
    """A map-style dataset of its own indices: what DistributedSampler shards and shuffles."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batch sampler over rows with ``lengths``: (question tokens, answer tokens) per row.

    With ``shuffle`` the epoch's order comes from ``self.sampler``, a ``DistributedSampler`` (one
    replica unless ``num_replicas``/``rank`` say otherwise): Lightning calls its ``set_epoch``,
    so every epoch and every resumed run sees the same order for the same ``seed``.
    """

    def __init__(self, lengths: Sequence[tuple[int, int]], batch_size: int, shuffle: bool = True,
                 window: int = 100, max_tokens: int | None = None, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        longest = max((sum(pair) for pair in lengths), default=0)
        if max_tokens is not None and max_tokens < longest:
            raise ConfigError(f"data.max_tokens={max_tokens} is smaller than the longest row "
                             f"({longest} tokens): raise it or lower the length limits")
        self.lengths, self.batch_size, self.shuffle = list(lengths), batch_size, shuffle
        self.window, self.max_tokens, self.seed = window, max_tokens, seed
        self.sampler = DistributedSampler(_Indices(len(self.lengths)), num_replicas=num_replicas,
                                          rank=rank, shuffle=shuffle, seed=seed)
        self._cached: tuple[int, list[list[int]]] | None = None
        self._skip = 0

    def _batches(self) -> list[list[int]]:
        epoch = self.sampler.epoch
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        indices = list(self.sampler)
        span = self.window * self.batch_size if self.shuffle else len(indices)
        batches = [b for start in range(0, len(indices), max(span, 1))
                   for b in bucket(indices[start:start + span], self.lengths.__getitem__,
                                   self.batch_size, self.max_tokens)]
        if self.shuffle:
            random.Random(epoch_seed(self.seed, epoch)).shuffle(batches)
        self._cached = (epoch, batches)
        return batches

    def skip_once(self, batches: int) -> None:
        """Start the next pass after ``batches`` batches: a run resumed mid-epoch sees the rest
        of the same epoch, not the start again."""
        self._skip = batches

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: nothing is read until the first batch is drawn, by which time Lightning
        # has called set_epoch (it creates the iterator before doing so on a resumed run).
        skip, self._skip = self._skip, 0
        yield from self._batches()[skip:]

    def __len__(self) -> int:
        return len(self._batches())

    def padding_fraction(self) -> tuple[float, float]:
        """Share of padding among the question positions and among the answer positions of this
        epoch's batches (the encoder's and the decoder's wasted work)."""
        real, padded = [0, 0], [0, 0]
        for batch in self._batches():
            for side, column in enumerate(zip(*(self.lengths[i] for i in batch))):
                real[side] += sum(column)
                padded[side] += max(column) * len(column)
        return tuple(1.0 - r / p if p else 0.0 for r, p in zip(real, padded))  # type: ignore


def replica_shard() -> dict[str, int]:
    """This process's data shard under torch.distributed (one shard otherwise)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return {"num_replicas": torch.distributed.get_world_size(),
                "rank": torch.distributed.get_rank()}
    return {"num_replicas": 1, "rank": 0}
