"""Question-answer data: loading with Hugging Face ``datasets``, checking, tokenising, batching.

Sources: local files (``data.train_file`` ...: JSON Lines, JSON, CSV or Parquet, by extension),
or anything ``datasets.load_dataset(data.path, data.name)`` reads: a hub dataset id, or a local
folder laid out like one (with ``HF_DATASETS_OFFLINE=1`` nothing is downloaded).

Each row becomes a source and a target (``qa_seq2seq.data.fields``): the ``question_field``, or a
``source_template`` over several fields; the ``answer_field``, which may be a path into nested
fields (``answers.text[0]``). Rows are checked before anything trains: an unparsable line, or a
missing, non-string or empty field stops the run with ``file:line: what is wrong`` (``row N`` for
non-line sources), or with ``on_bad_row=skip`` is skipped and counted. Preparation and
tokenisation run through ``Dataset.map(batched=True)``, so ``datasets`` caches them by content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader

from qa_seq2seq.compatibility import batches_processed
from qa_seq2seq.data.bad_rows import BadRows
from qa_seq2seq.data.batching import LengthBucketBatchSampler, collate, replica_shard
from qa_seq2seq.data.fields import SourceBuilder
from qa_seq2seq.data.rows import (
    Encode,
    Prepare,
    column,
    csv_text_features,
    is_empty,
    line_numbers,
    scan_jsonl,
)
from qa_seq2seq.data.sampling import SampledCollate
from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.errors import ConfigError, DataError

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")
BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
SHUFFLE_BUFFER, TOKENIZER_SAMPLE = 10_000, 100_000  # streaming defaults (data.* null)


class ResumableLoader(DataLoader):
    """The training loader, stateful as Lightning expects: its ``state_dict`` (saved in every
    checkpoint) holds how many of this epoch's batches were trained (``trained``, set by the
    datamodule from Lightning's progress), and ``load_state_dict`` makes the next pass start
    after them. A run resumed mid-epoch sees the rest of the same epoch, in the same order."""

    trained: Callable[[], int] = staticmethod(lambda: 0)
    _skipping = 0  # batches the next pass skips

    def state_dict(self) -> dict[str, int]:
        return {"batches": self.trained()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        done = state.get("batches", 0)
        # The epoch's last batch: the next epoch starts afresh. Lightning restores the loader's
        # state after the datamodule has already passed it on: the same skip, said once.
        if 0 < done < len(self) and done != self._skipping:
            log.info("resuming mid-epoch: skipping the %d batches of this epoch already trained",
                     done)
            self.batch_sampler.skip_once(done)
            self._skipping = done


class QADataModule(L.LightningDataModule):
    """Loads the three splits, trains or receives the tokenizer, and serves length-bucketed batches.

    In memory; ``streaming=True`` makes a :class:`StreamingQADataModule`
    instead (the same rows, checks and tokens, read while iterating).

    Args:
        train_file, validation_file, test_file: local files (.jsonl, .json, .csv, .parquet);
            or instead ``path`` (and ``name``) for ``datasets.load_dataset``, with
            ``split_names`` mapping train/validation/test to the source's split names.
        question_field, answer_field: where the question and answer are; ``answer_field`` may
            be a nested path (``answers.text[0]``). ``source_template`` (e.g.
            ``"question: {question} context: {context}"``) replaces ``question_field``;
            ``truncate_field`` names the template field cut first when a source is too long.
        reverse_source: the encoder reads each source's tokens last to first (Sutskever et al.
            2014). Stored with the model's data config, so evaluation and the CLI do the same.
        reverse_target: the decoder writes each answer's tokens last to first; answers are
            turned back before they are shown or scored (stored likewise).
        family_field: optional field grouping metrics by question family.
        tokenizer: factory called with the training texts (a ``_partial_`` of
            ``Tokenizer.train``), unless a tokenizer is given with :meth:`use_tokenizer`.
        batch_size: rows per training batch; ``max_tokens`` caps padded tokens per batch too.
        eval_batch_size: rows per validation/test batch (sorted by length, not shuffled).
        subword_sampling: segment each training batch's words one sampled way (BPE-dropout or
            unigram sampling with this ``alpha``; :mod:`qa_seq2seq.data.sampling`); None: the
            tokenizer's best segmentation, as validation and decoding always read.
        sort_window: batches per sort window when shuffling (larger: less padding, less random).
        max_question_length, max_answer_length: in tokens; longer rows are truncated
            (``overlength=truncate``), dropped (``drop``) or refused (``error``), always counted.
        on_bad_row: ``error`` (stop with file:line) or ``skip`` (drop, count and log).
        max_train_examples: use only the first N training rows (quick experiments).
        num_proc: processes for ``Dataset.map`` (large data).
        streaming: read splits while iterating (:class:`StreamingQADataModule`), for data larger
            than memory; ``shuffle_buffer`` rows are shuffled at a time, and the tokenizer is
            trained on the first ``tokenizer_sample`` training rows (None: 10,000 and 100,000).
            Both are refused without streaming.
        generate: called with no arguments when a split file is missing (the toy data).
    """

    streams = False  # read while iterating (qa_seq2seq.data.streaming.StreamingQADataModule)

    def __init__(
        self,
        train_file: str | None = None,
        validation_file: str | None = None,
        test_file: str | None = None,
        path: str | None = None,
        name: str | None = None,
        split_names: dict[str, str] | None = None,
        question_field: str = "question",
        answer_field: str = "answer",
        source_template: str | None = None,
        truncate_field: str | None = None,
        reverse_source: bool = False,
        reverse_target: bool = False,
        family_field: str | None = None,
        tokenizer: Callable[[list[str]], Tokenizer] | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        subword_sampling: float | None = None,
        max_tokens: int | None = None,
        sort_window: int = 100,
        max_question_length: int = 256,
        max_answer_length: int = 64,
        overlength: str = "truncate",
        on_bad_row: str = "error",
        max_train_examples: int | None = None,
        num_proc: int | None = None,
        shuffle_buffer: int | None = None,
        tokenizer_sample: int | None = None,
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
        if (path is None) == (train_file is None):
            raise ConfigError("give either data.path (a datasets source) or data.train_file "
                              f"(local files), not {'both' if path else 'neither'}")
        for split, file in zip(SPLITS, (train_file, validation_file, test_file)):
            if file and Path(file).suffix not in BUILDERS:
                problem = "unknown file type" if Path(file).exists() else "not found"
                raise ConfigError(f"data.{split}_file={file}: {problem}; give a .jsonl, .json, "
                                  ".csv or .parquet file")
        self.files = {"train": train_file, "validation": validation_file, "test": test_file}
        self.path, self.name = path, name
        self.split_names = {**{s: s for s in SPLITS}, **(split_names or {})}
        self.builder = SourceBuilder(question_field, source_template=source_template,
                                     truncate_field=truncate_field, max_length=max_question_length,
                                     reverse_source=reverse_source, reverse_target=reverse_target)
        self.answer_field, self.family_field = answer_field, family_field
        self.tokenizer_factory, self.tokenizer = tokenizer, None
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        if subword_sampling is not None and not 0 < subword_sampling <= 1:
            raise ConfigError(f"data.subword_sampling={subword_sampling}: give an alpha in (0, 1], "
                              "e.g. 0.1, or null for the tokenizer's best segmentation")
        if subword_sampling is not None and self.streams:
            raise ConfigError("data.subword_sampling reads the training rows in memory: set "
                              "data.streaming=false, or data.subword_sampling=null")
        self.subword_sampling = subword_sampling
        self.max_tokens, self.sort_window = max_tokens, sort_window
        self.limits = (max_question_length, max_answer_length)
        self.overlength, self.on_bad_row = overlength, on_bad_row
        self.max_train_examples, self.num_proc = max_train_examples, num_proc
        # Streaming only; runs stored before these became null hold the defaults: accept those.
        if not self.streams and (shuffle_buffer not in (None, SHUFFLE_BUFFER)
                                 or tokenizer_sample not in (None, TOKENIZER_SAMPLE)):
            raise ConfigError("data.shuffle_buffer and data.tokenizer_sample apply to streaming "
                              "only: set data.streaming=true, or leave them null")
        self.shuffle_buffer = shuffle_buffer or SHUFFLE_BUFFER
        self.tokenizer_sample = tokenizer_sample or TOKENIZER_SAMPLE
        self.num_workers, self.seed, self.cache_dir = num_workers, seed, cache_dir
        self.generate = generate
        self.splits: dict[str, datasets.Dataset] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self._resume_at = 0  # batches of the epoch trained before a resume

    # ----- files and tokenizer ----------------------------------------------------------------
    def prepare_data(self) -> None:
        missing = [f for f in self.files.values() if f and not Path(f).exists()]
        if missing and self.generate is not None:
            self.generate()
            missing = [f for f in missing if not Path(f).exists()]
        if missing:
            raise DataError(f"data file(s) not found: {missing}. Set data.train_file, "
                            "data.validation_file and data.test_file to existing files.")

    def use_tokenizer(self, tokenizer: Tokenizer) -> None:
        """Use an existing tokenizer (a resumed run's, or a checkpoint's) instead of training one."""
        self.tokenizer = tokenizer

    def fit_tokenizer(self) -> Tokenizer:
        """Train the tokenizer on the training split's sources and targets."""
        if self.tokenizer_factory is None:
            raise ConfigError("data.tokenizer is not set and no tokenizer was given")
        sources, targets = self._training_texts()
        self.tokenizer = self.tokenizer_factory(sources + targets)
        log.info("trained a %d-piece tokenizer on %d training rows", self.tokenizer.vocab_size,
                 len(sources))
        return self.tokenizer

    def _training_texts(self) -> tuple[list[str], list[str]]:
        train = self.prepared("train")
        return column(train, "source"), column(train, "target")

    # ----- splits ------------------------------------------------------------------------------
    def where(self, split: str) -> str:
        """How to name ``split``'s source in messages."""
        if self.path:
            return f"{self.path}" + (f" ({self.name})" if self.name else "") + \
                f" split {self.split_names[split]!r}"
        return str(self.files[split])

    def load(self, split: str) -> tuple[datasets.Dataset | datasets.IterableDataset, list[int] | None]:
        """Raw rows of ``split`` (a stream when :attr:`streams`), and each row's line number when
        the source has lines and is read whole."""
        read = {"cache_dir": self.cache_dir, **({"streaming": True} if self.streams else {})}
        if self.path:
            return datasets.load_dataset(self.path, self.name, split=self.split_names[split],
                                         **read), None
        file, builder, options = self.source_file(split)
        try:
            ds = datasets.load_dataset(builder, data_files={split: file}, split=split, **read,
                                       **options)
        except (datasets.exceptions.DatasetGenerationError, ValueError, TypeError) as e:
            if builder != "json" or self.streams:
                raise DataError(f"{file}: could not be loaded as {builder}: {e}") from e
            return self._scan(split, e)
        return ds, line_numbers(file) if builder == "json" and not self.streams else None

    def source_file(self, split: str) -> tuple[str, str, dict[str, Any]]:
        """``split``'s file, its ``datasets`` builder, and the builder's options."""
        file = self.files.get(split)
        if not file:
            raise DataError(f"no file configured for split {split!r} (data.{split}_file)")
        if is_empty(file):
            raise DataError(f"{file}: the file is empty; the {split} split (data.{split}_file) "
                            "needs at least one question-answer row")
        builder = BUILDERS[Path(file).suffix]
        # CSV cells as written ("007", "1.50"), not as the numbers pandas would read them as.
        return file, builder, {"features": csv_text_features(file)} if builder == "csv" else {}

    def _scan(self, split: str, error: Exception) -> tuple[datasets.Dataset, list[int]]:
        """pyarrow refused a JSON Lines file and names no line: read it ourselves, report the
        bad lines, keep the good ones."""
        file = self.files[split]
        check = Prepare(self.builder, self.answer_field, self.family_field).problem
        rows, lines, problems = scan_jsonl(file, check)
        if not problems:
            raise DataError(f"{file}: could not be loaded as JSON Lines: {error}") from error
        self._report(split, problems)
        return datasets.Dataset.from_list(rows), lines

    def prepared(self, split: str) -> datasets.Dataset:
        """Checked rows of ``split`` with ``source``, ``target`` and ``family`` columns."""
        ds, lines = self.load(split)
        prepare = Prepare(self.builder, self.answer_field, self.family_field)
        try:
            ds = ds.map(prepare, batched=True, num_proc=self.num_proc, desc=f"preparing {split}")
        except UnicodeDecodeError as e:  # pyarrow reads JSON without checking its UTF-8
            if self.path:
                raise DataError(f"{self.where(split)}: text that is not valid UTF-8 ({e})") from e
            ds, lines = self._scan(split, e)
            ds = ds.map(prepare, batched=True, desc=f"preparing {split}")
        flagged = [(i, p) for i, p in enumerate(column(ds, "problem")) if p]
        if flagged:
            self._report(split, [(lines[i] if lines else f"row {i + 1}", p) for i, p in flagged])
            ds = ds.filter(lambda problem: problem is None, input_columns="problem")
        if len(ds) == 0:
            raise DataError(f"{self.where(split)}: no usable rows (every row was skipped)")
        if split == "train" and self.max_train_examples:
            ds = ds.select(range(min(self.max_train_examples, len(ds))))
        return ds

    def split(self, split: str) -> datasets.Dataset:
        """``split`` tokenised: ``src_ids``, ``tgt_ids``, ``index`` columns (cached)."""
        if split not in self.splits:
            if self.tokenizer is None:
                raise ConfigError("no tokenizer yet: call fit_tokenizer() or use_tokenizer()")
            self.splits[split] = self._encoded(
                split, Encode(self.tokenizer, self.builder, self.limits[1]))
        return self.splits[split]

    def _encoded(self, split: str, encode: Encode) -> datasets.Dataset:
        ds = self.prepared(split).map(encode, batched=True, with_indices=True,
                                      num_proc=self.num_proc, desc=f"tokenising {split}")
        flags = column(ds, "truncated")
        truncated = sum(flags)
        if truncated and self.overlength == "error":
            first = flags.index(True)
            raise DataError(f"{self.where(split)}: {truncated} rows exceed the length limits "
                            f"(first: row {first + 1}); raise data.max_question_length/"
                            "max_answer_length or set data.overlength=truncate|drop")
        if truncated and self.overlength == "drop":
            ds = ds.filter(lambda t: not t, input_columns="truncated")
        if truncated:
            longest = [max(n) for n in zip(*column(ds, "lengths"))] if self.overlength != "drop" \
                else None
            fits = "" if longest is None else (
                f"; data.max_question_length={longest[0]} data.max_answer_length={longest[1]} "
                "would fit every row")
            log.warning("%s: %d rows (%.0f%%) over the length limits %s were %s%s",
                        self.where(split), truncated, 100 * truncated / len(flags), self.limits,
                        "dropped" if self.overlength == "drop" else "truncated", fits)
        self.stats.setdefault(split, {})["overlength"] = truncated
        return ds

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "validation"), "validate": ("validation",),
                  "test": ("test",)}.get(stage or "fit", ())
        for name in wanted:
            self.split(name)

    def _report(self, split: str, problems: list[tuple[int | str, str]]) -> None:
        """Stop on ``problems`` or log and count them (:class:`BadRows`); ``problems``: (line
        number, or ``"row N"`` when the source has no lines, what is wrong)."""
        stats = self.stats.setdefault(split, {})
        stats["bad_rows"] = stats.get("bad_rows", 0) + len(problems)
        BadRows(self.where(split), self.on_bad_row == "skip").all(problems)

    # ----- loaders -----------------------------------------------------------------------------
    def lengths(self, split: str) -> list[tuple[int, int]]:
        ds = self.split(split)
        return [(len(s), len(t) + 1) for s, t in zip(column(ds, "src_ids"), column(ds, "tgt_ids"))]

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        columns, batch = ["src_ids", "tgt_ids", "index"], collate
        if shuffle and self.subword_sampling:
            columns, batch = columns + ["source", "target"], self._sampled_collate()
        ds = self.split(split).select_columns(columns)
        replica = replica_shard()
        if self.max_tokens and replica["num_replicas"] > 1:
            raise ConfigError("data.max_tokens gives each process a different number of batches, "
                              "which data-parallel training cannot take: use data.batch_size")
        sampler = LengthBucketBatchSampler(
            self.lengths(split), self.batch_size if shuffle else self.eval_batch_size,
            shuffle=shuffle, window=self.sort_window, max_tokens=self.max_tokens if shuffle
            else None, seed=self.seed, **replica)
        if shuffle:
            questions, answers = sampler.padding_fraction()
            log.info("%s: %d batches; padding: %.1f%% of question positions (encoder), %.1f%% "
                     "of answer positions (decoder)", split, len(sampler), 100 * questions,
                     100 * answers)
        # Its own generator: creating an iterator then draws no number from torch's global RNG,
        # so dropout masks do not depend on how many loaders were iterated (resume = no resume).
        return (ResumableLoader if shuffle else DataLoader)(
            ds, batch_sampler=sampler, collate_fn=batch, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed))

    def _sampled_collate(self) -> SampledCollate:
        try:
            self.tokenizer.encode_sampled(["probe"], self.subword_sampling)
        except RuntimeError:
            raise ConfigError("data.subword_sampling samples segmentations of a bpe or unigram "
                              "tokenizer: set data.tokenizer.model_type=bpe|unigram, or "
                              "data.subword_sampling=null") from None
        return SampledCollate(self.tokenizer, self.builder, alpha=self.subword_sampling,
                              max_answer_length=self.limits[1], seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        loader = self.loader("train", shuffle=True)
        if isinstance(loader, ResumableLoader) and self.trainer is not None:
            loader.trained = self._trained_batches
            if self._resume_at:  # see load_state_dict
                loader.load_state_dict({"batches": self._resume_at})
                self._resume_at = 0
        return loader

    def _trained_batches(self) -> int:
        return batches_processed(self.trainer) if self.trainer is not None else 0

    def state_dict(self) -> dict[str, int]:
        return {"train_batches": self._trained_batches()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Lightning restores this before any loader exists, whereas the loader's own state
        arrives only if the loader is made after the restore: a scheduler that asks for
        ``estimated_stepping_batches`` makes it earlier. The next training loader skips these."""
        self._resume_at = state.get("train_batches", 0)

    def val_dataloader(self) -> DataLoader:
        return self.loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", shuffle=False)
