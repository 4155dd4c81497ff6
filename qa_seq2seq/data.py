"""Question-answer data: loading with Hugging Face ``datasets``, checking, tokenising, batching.

Each split is a JSON Lines file (one object per line) with a question field and an answer field
(names configurable), and optionally a family/type field used for per-family metrics. Rows are
checked before anything trains: a malformed line, a missing, non-string or empty field stops the
run with ``file:line: what is wrong`` (or, with ``on_bad_row=skip``, is skipped and counted).
Tokenisation runs through ``Dataset.map(batched=True)``, so ``datasets`` caches it by content.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import datasets
import lightning.pytorch as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from qa_seq2seq.batching import LengthBucketBatchSampler, pad
from qa_seq2seq.errors import ConfigError, DataError
from qa_seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


class Batch(NamedTuple):
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


class Encode:
    """``Dataset.map`` function: text fields -> token ids, cut to the length limits.

    A plain class holding the tokenizer bytes, so ``datasets`` fingerprints it by content and
    reuses the cached result on the next run.
    """

    def __init__(self, tokenizer: Tokenizer, question_field: str, answer_field: str,
                 max_question_length: int, max_answer_length: int):
        self.tokenizer = tokenizer
        self.fields = (question_field, answer_field)
        self.limits = (max_question_length, max_answer_length)

    def __call__(self, rows: dict[str, list], indices: list[int]) -> dict[str, list]:
        question_field, answer_field = self.fields
        src = self.tokenizer.encode(rows[question_field])
        tgt = self.tokenizer.encode(rows[answer_field])
        return {
            "src_ids": [ids[: self.limits[0]] for ids in src],
            "tgt_ids": [ids[: self.limits[1]] for ids in tgt],
            "truncated": [len(s) > self.limits[0] or len(t) > self.limits[1]
                          for s, t in zip(src, tgt)],
            "index": indices,
        }


class QADataModule(L.LightningDataModule):
    """Loads the three splits, trains or receives the tokenizer, and serves length-bucketed batches.

    Args:
        train_file, validation_file, test_file: JSON Lines files.
        question_field, answer_field: names of the text fields; ``family_field`` (optional)
            groups metrics by question family.
        tokenizer: factory called with the training texts (a ``_partial_`` of
            ``Tokenizer.train``), unless a tokenizer is given with :meth:`use_tokenizer`.
        batch_size: rows per training batch; ``max_tokens`` caps padded tokens per batch too.
        eval_batch_size: rows per validation/test batch (sorted by length, not shuffled).
        sort_window: batches per sort window when shuffling (larger: less padding, less random).
        max_question_length, max_answer_length: in tokens; longer rows are truncated
            (``overlength=truncate``), dropped (``drop``) or refused (``error``), always counted.
        on_bad_row: ``error`` (stop with file:line) or ``skip`` (drop, count and log).
        max_train_examples: use only the first N training rows (quick experiments).
        generate: called with no arguments when a split file is missing (the toy data).
    """

    def __init__(
        self,
        train_file: str,
        validation_file: str,
        test_file: str | None = None,
        question_field: str = "question",
        answer_field: str = "answer",
        family_field: str | None = "family",
        tokenizer: Callable[[list[str]], Tokenizer] | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        max_tokens: int | None = None,
        sort_window: int = 100,
        max_question_length: int = 256,
        max_answer_length: int = 64,
        overlength: str = "truncate",
        on_bad_row: str = "error",
        max_train_examples: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        cache_dir: str | None = None,
        generate: Callable[[], Any] | None = None,
    ):
        super().__init__()
        if on_bad_row not in ("error", "skip"):
            raise ConfigError(f"data.on_bad_row={on_bad_row!r}: use 'error' or 'skip'")
        if overlength not in ("truncate", "drop", "error"):
            raise ConfigError(f"data.overlength={overlength!r}: use 'truncate', 'drop' or 'error'")
        self.files = {"train": train_file, "validation": validation_file, "test": test_file}
        self.question_field, self.answer_field = question_field, answer_field
        self.family_field = family_field
        self.tokenizer_factory, self.tokenizer = tokenizer, None
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.max_tokens, self.sort_window = max_tokens, sort_window
        self.limits = (max_question_length, max_answer_length)
        self.overlength, self.on_bad_row = overlength, on_bad_row
        self.max_train_examples, self.num_workers = max_train_examples, num_workers
        self.seed, self.cache_dir, self.generate = seed, cache_dir, generate
        self.splits: dict[str, datasets.Dataset] = {}
        self.stats: dict[str, dict[str, int]] = {}

    # ----- files and tokenizer ----------------------------------------------------------------
    def prepare_data(self) -> None:
        missing = [f for f in self.files.values() if f and not Path(f).exists()]
        if missing and self.generate is not None:
            self.generate()
            missing = [f for f in missing if not Path(f).exists()]
        if missing:
            raise DataError(f"data file(s) not found: {missing}. Set data.train_file, "
                            "data.validation_file and data.test_file to JSON Lines files.")

    def use_tokenizer(self, tokenizer: Tokenizer) -> None:
        """Use an existing tokenizer (a resumed run's, or a checkpoint's) instead of training one."""
        self.tokenizer = tokenizer

    def fit_tokenizer(self) -> Tokenizer:
        """Train the tokenizer on the training split's questions and answers."""
        if self.tokenizer_factory is None:
            raise ConfigError("data.tokenizer is not set and no tokenizer was given")
        train = self.raw_split("train")
        self.tokenizer = self.tokenizer_factory(list(train[self.question_field])
                                                + list(train[self.answer_field]))
        log.info("trained a %d-piece tokenizer on %d training rows", self.tokenizer.vocab_size,
                 len(train))
        return self.tokenizer

    # ----- splits ------------------------------------------------------------------------------
    def raw_split(self, split: str) -> datasets.Dataset:
        """The checked, untokenised rows of ``split``."""
        path = self.files.get(split)
        if not path:
            raise DataError(f"no file configured for split {split!r} (data.{split}_file)")
        fields = (self.question_field, self.answer_field)
        try:
            ds = datasets.load_dataset("json", data_files={split: path}, split=split,
                                       cache_dir=self.cache_dir)
            ds = self._check_rows(ds, path, split)
        except (datasets.exceptions.DatasetGenerationError, ValueError, TypeError) as e:
            if isinstance(e, DataError):
                raise
            # pyarrow refused the file and names no line: read it ourselves to find the bad ones.
            rows, problems = _scan_jsonl(path, fields)
            if not problems:
                raise DataError(f"{path}: could not be loaded as JSON Lines: {e}") from e
            self._report(path, split, problems)
            ds = datasets.Dataset.from_list(rows)
        if split == "train" and self.max_train_examples:
            ds = ds.select(range(min(self.max_train_examples, len(ds))))
        return ds

    def split(self, split: str) -> datasets.Dataset:
        """``split`` with ``src_ids``, ``tgt_ids`` and ``index`` columns (cached)."""
        if split not in self.splits:
            if self.tokenizer is None:
                raise ConfigError("no tokenizer yet: call fit_tokenizer() or use_tokenizer()")
            encode = Encode(self.tokenizer, self.question_field, self.answer_field, *self.limits)
            ds = self.raw_split(split).map(encode, batched=True, with_indices=True,
                                           desc=f"tokenising {split}")
            flags = list(ds["truncated"])
            truncated = sum(flags)
            if truncated and self.overlength == "error":
                first = flags.index(True)
                raise DataError(f"{self.files[split]}: {truncated} rows exceed the length limits "
                                f"(first: row {first + 1}); raise data.max_question_length/"
                                "max_answer_length or set data.overlength=truncate|drop")
            if truncated and self.overlength == "drop":
                ds = ds.filter(lambda t: not t, input_columns="truncated")
            if truncated:
                log.warning("%s: %d rows over the length limits %s were %s", self.files[split],
                            truncated, self.limits,
                            "dropped" if self.overlength == "drop" else "truncated")
            self.stats.setdefault(split, {})["overlength"] = truncated
            self.splits[split] = ds
        return self.splits[split]

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "validation"), "validate": ("validation",),
                  "test": ("test",)}.get(stage or "fit", ())
        for name in wanted:
            self.split(name)

    def _check_rows(self, ds: datasets.Dataset, path: str, split: str) -> datasets.Dataset:
        """Rows whose question and answer are non-empty strings; the others reported."""
        absent = [f for f in (self.question_field, self.answer_field) if f not in ds.column_names]
        if absent:
            raise DataError(f"{path}: no field {absent} in any row (fields: {ds.column_names}). "
                            "Set data.question_field / data.answer_field to the right names.")
        bad: dict[int, str] = {}
        for field in (self.question_field, self.answer_field):
            for i, value in enumerate(list(ds[field])):
                if problem := _field_problem(field, value):
                    bad.setdefault(i, problem)
        if bad:
            lines = _line_numbers(path)
            self._report(path, split, [(lines[i], what) for i, what in sorted(bad.items())])
            ds = ds.select([i for i in range(len(ds)) if i not in bad])
        self.stats.setdefault(split, {})["bad_rows"] = len(bad)
        return ds

    def _report(self, path: str, split: str, problems: list[tuple[int, str]]) -> None:
        """Stop on bad rows (``on_bad_row=error``) or log and count them (``skip``)."""
        described = [f"{path}:{line}: {what}" for line, what in problems]
        self.stats.setdefault(split, {})["bad_rows"] = len(problems)
        if self.on_bad_row == "error":
            more = f"\n... and {len(described) - 10} more" if len(described) > 10 else ""
            raise DataError("bad rows (fix them, or set data.on_bad_row=skip to skip them):\n"
                            + "\n".join(described[:10]) + more)
        log.warning("%s: skipped %d bad rows: %s%s", path, len(problems),
                    "; ".join(described[:3]), " ..." if len(described) > 3 else "")

    # ----- loaders -----------------------------------------------------------------------------
    def lengths(self, split: str) -> list[tuple[int, int]]:
        ds = self.split(split)
        return [(len(s), len(t) + 1) for s, t in zip(list(ds["src_ids"]), list(ds["tgt_ids"]))]

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.split(split).select_columns(["src_ids", "tgt_ids", "index"])
        sampler = LengthBucketBatchSampler(
            self.lengths(split), self.batch_size if shuffle else self.eval_batch_size,
            shuffle=shuffle, window=self.sort_window, max_tokens=self.max_tokens if shuffle
            else None, seed=self.seed, **_replica())
        if shuffle:
            log.info("%s: %d batches, padding %.1f%% of question+answer positions", split,
                     len(sampler), 100 * sampler.padding_fraction())
        # Its own generator: creating an iterator then draws no number from torch's global RNG,
        # so dropout masks do not depend on how many loaders were iterated (resume = no resume).
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader:
        loader = self.loader("train", shuffle=True)
        loop = self.trainer.fit_loop if self.trainer is not None else None
        if loop is not None and loop.restarting:
            # "processed": a checkpoint written in on_train_batch_end has not counted its batch
            # as completed yet, but the update is in the weights. A checkpoint of the epoch's
            # last batch starts the next epoch (Lightning resets its own counters then too).
            done = loop.epoch_loop.batch_progress.current.processed
            if 0 < done < len(loader):
                log.info("resuming mid-epoch: skipping the %d batches of this epoch already "
                         "trained", done)
                loader.batch_sampler.skip_once(done)
        return loader

    def val_dataloader(self) -> DataLoader:
        return self.loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", shuffle=False)


def _replica() -> dict[str, int]:
    """This process's data shard under torch.distributed (one shard otherwise)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return {"num_replicas": torch.distributed.get_world_size(),
                "rank": torch.distributed.get_rank()}
    return {"num_replicas": 1, "rank": 0}


def _line_numbers(path: str) -> list[int]:
    """1-based line number of each non-blank line (the rows ``datasets`` reads)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [n for n, line in enumerate(f, 1) if line.strip()]


def _field_problem(field: str, value: Any) -> str | None:
    if value is None:
        return f"field {field!r} is missing"
    if not isinstance(value, str):
        return f"field {field!r} is {type(value).__name__}, not a string"
    if not value.strip():
        return f"field {field!r} is empty"
    return None


def _scan_jsonl(path: str, fields: tuple[str, ...]) -> tuple[list[dict], list[tuple[int, str]]]:
    """Read ``path`` line by line: the usable rows, and (line, problem) for the others."""
    rows, problems = [], []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                problems.append((n, f"not valid UTF-8 ({e.reason} at byte {e.start})"))
                continue
            except json.JSONDecodeError as e:
                problems.append((n, f"not valid JSON ({e.msg} at column {e.colno}); each line "
                                    'must be one object like {"question": "...", "answer": "..."}'))
                continue
            if not isinstance(row, dict):
                problems.append((n, f"a JSON {type(row).__name__}, not an object"))
                continue
            problem = next(filter(None, (_field_problem(k, row.get(k)) for k in fields)), None)
            if problem:
                problems.append((n, problem))
            else:
                rows.append(row)
    return rows, problems
