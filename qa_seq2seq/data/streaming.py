"""Streaming data (``data.streaming=true``): :class:`StreamingQADataModule`, whose splits are
read while they are iterated, never loaded.

For data larger than memory or than the ``datasets`` cache: rows come from an
``IterableDataset`` (shuffled through a buffer of ``data.shuffle_buffer`` rows), are prepared and
tokenised on the fly, and are batched by length within windows of ``data.sort_window`` batches
(:class:`BucketedStream`), the batches of a window shuffled. The number of batches is not known
in advance: an epoch ends when its stream does (the progress bar shows no total), and a
scheduler sized by ``trainer.max_steps`` needs that key set.

Bad rows are handled as in the in-memory path, but met one at a time (:class:`BadRows`):
``on_bad_row=error`` stops at the first, naming its row number in the stream; ``skip`` counts
them in the log as they go.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import datasets
import torch
from torch.utils.data import DataLoader

from qa_seq2seq.data.bad_rows import BadRows
from qa_seq2seq.data.batching import bucket, collate, epoch_seed, replica_shard
from qa_seq2seq.data.datamodule import SHUFFLE_BUFFER, TOKENIZER_SAMPLE, QADataModule
from qa_seq2seq.data.rows import Encode
from qa_seq2seq.errors import ConfigError

log = logging.getLogger(__name__)


class BucketedStream(torch.utils.data.IterableDataset):
    """Batches from a stream of tokenised rows: sorted by length within windows, then shuffled.

    ``epoch`` is read at each pass, so every epoch gets its own order for the same ``seed``.
    """

    def __init__(self, rows: Any, collate: Callable[[list[dict]], Any], batch_size: int,
                 window: int, shuffle: bool, seed: int, epoch: Callable[[], int]):
        super().__init__()
        self.rows, self.collate, self.batch_size = rows, collate, batch_size
        self.window, self.shuffle, self.seed, self.epoch = window, shuffle, seed, epoch

    def __iter__(self) -> Iterator[Any]:
        epoch = self.epoch()
        if self.shuffle:
            self.rows.set_epoch(epoch)  # reshuffles the upstream buffer
        rng = random.Random(epoch_seed(self.seed, epoch))
        buffer: list[dict] = []
        for row in self.rows:
            buffer.append(row)
            if len(buffer) == self.window * self.batch_size:
                yield from self._batches(buffer, rng)
                buffer = []
        if buffer:
            yield from self._batches(buffer, rng)

    def _batches(self, rows: list[dict], rng: random.Random) -> Iterator[Any]:
        batches = bucket(rows, lambda r: (len(r["src_ids"]), len(r["tgt_ids"])), self.batch_size)
        if self.shuffle:
            rng.shuffle(batches)
        for batch in batches:
            yield self.collate(batch)


class StreamingQADataModule(QADataModule):
    """``data.streaming=true``: :class:`QADataModule`'s rows, checks and tokens, read while
    iterating. Made by ``make_datamodule(..., streaming=True)``, as the config does."""

    streams = True

    @property
    def shuffle_buffer(self) -> int:
        """Training rows shuffled at a time (``data.shuffle_buffer``, by default 10,000)."""
        return self.batching.shuffle_buffer or SHUFFLE_BUFFER

    @property
    def tokenizer_sample(self) -> int:
        """Training rows the tokenizer is trained on (``data.tokenizer_sample``, by default
        the first 100,000)."""
        return self.batching.tokenizer_sample or TOKENIZER_SAMPLE

    def training_texts(self) -> tuple[list[str], list[str]]:
        """A sample from the start of the stream: ``tokenizer_sample`` rows."""
        train = self.prepared("train").select_columns(["source", "target"])
        rows = list(itertools.islice(train, self.tokenizer_sample))
        return [r["source"] for r in rows], [r["target"] for r in rows]

    def prepared(self, split: str) -> datasets.IterableDataset:
        ds, _ = self.load(split)
        ds = ds.map(self._prepare(), batched=True)
        ds = ds.filter(BadRows(self.where(split), self.limits.on_bad_row == "skip"),
                       input_columns="problem", with_indices=True)
        if split == "train" and self.limits.max_train_examples:
            ds = ds.take(self.limits.max_train_examples)
        return ds

    def _encoded(self, split: str, encode: Encode) -> datasets.IterableDataset:
        ds = self.prepared(split).map(encode, batched=True, with_indices=True)
        if split == "train":  # after indexing: an index names the row, not its shuffled place
            ds = ds.shuffle(seed=self.batching.seed, buffer_size=self.shuffle_buffer)
        if self.limits.overlength != "truncate":  # error: stop at the first; drop: count, skip
            guard = BadRows(self.where(split), self.limits.overlength == "drop", "over-long row")
            ds = ds.map(lambda t: {"problem": "over the length limits" if t else None},
                        input_columns="truncated").filter(guard, input_columns="problem",
                                                          with_indices=True)
        return ds

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        if replica_shard()["num_replicas"] > 1:
            raise ConfigError("data.streaming with several processes is not supported yet "
                              "(ranks could see different numbers of batches): train in "
                              "memory (data.streaming=false) or in one process")
        options = self.batching
        stream = BucketedStream(
            self.split(split).select_columns(["src_ids", "tgt_ids", "index"]), collate,
            batch_size=options.batch_size if shuffle else options.eval_batch_size,
            window=options.sort_window, shuffle=shuffle, seed=options.seed,
            epoch=lambda: self.trainer.current_epoch if self.trainer else 0)
        return DataLoader(stream, batch_size=None, num_workers=options.num_workers)
