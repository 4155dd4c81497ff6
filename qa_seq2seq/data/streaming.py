"""What streaming data (``data.streaming=true``, ``qa_seq2seq.data.datamodule.StreamingQADataModule``) is
made of: splits read while they are iterated, never loaded.

For data larger than memory or than the ``datasets`` cache: rows come from an
``IterableDataset`` (shuffled through a buffer of ``data.shuffle_buffer`` rows), are prepared and
tokenised on the fly, and are batched by length within windows of ``data.sort_window`` batches
(:class:`BucketedStream`), the batches of a window shuffled. The number of batches is not known
in advance: an epoch ends when its stream does (the progress bar shows no total), and a
scheduler sized by ``trainer.max_steps`` needs that key set.

Bad rows are handled as in the in-memory path, but met one at a time (:class:`RowGuard`):
``on_bad_row=error`` stops at the first, naming its row number in the stream; ``skip`` counts
them in the log as they go.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import torch

from qa_seq2seq.data.batching import bucket, epoch_seed
from qa_seq2seq.errors import DataError

log = logging.getLogger(__name__)


class RowGuard:
    """``IterableDataset.filter`` function: stops at, or counts and drops, rows with a problem."""

    def __init__(self, where: str, skip: bool, what: str = "bad row"):
        self.where, self.skip, self.what, self.dropped = where, skip, what, 0

    def __call__(self, problem: str | None, index: int) -> bool:
        if problem is None:
            return True
        if not self.skip:
            raise DataError(f"{self.where}: row {index + 1} of the stream: {problem} (fix it, or "
                            "set data.on_bad_row=skip to skip such rows)")
        self.dropped += 1
        if self.dropped & (self.dropped - 1) == 0:  # 1, 2, 4, 8, ...: a trace, not a flood
            log.warning("%s: %d %ss skipped so far (e.g. row %d: %s)", self.where, self.dropped,
                        self.what, index + 1, problem)
        return False


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


