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
from qa_seq2seq.data.options import BUILDERS, Batching, Fields, Limits, Sources
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

    In memory; :class:`~qa_seq2seq.data.streaming.StreamingQADataModule` reads the same rows,
    checks and tokens while iterating. Configs build either through
    :func:`~qa_seq2seq.data.factory.make_datamodule`, which takes the flat ``data.*`` keys.

    Args:
        sources: where the rows come from (:class:`~qa_seq2seq.data.options.Sources`).
        fields: which fields make the source and target (:class:`Fields`); None: the defaults,
            as for the next two.
        limits: length limits and what happens to over-long or broken rows (:class:`Limits`).
        batching: batch sizes, order and workers (:class:`Batching`).
        tokenizer: factory called with the training texts (a ``_partial_`` of
            ``Tokenizer.train``), unless a tokenizer is given with :meth:`use_tokenizer`.
    """

    streams = False  # read while iterating (qa_seq2seq.data.streaming.StreamingQADataModule)

    def __init__(self, sources: Sources, fields: Fields | None = None,
                 limits: Limits | None = None, batching: Batching | None = None,
                 tokenizer: Callable[[list[str]], Tokenizer] | None = None):
        super().__init__()
        fields, limits, batching = fields or Fields(), limits or Limits(), batching or Batching()
        if batching.subword_sampling is not None and self.streams:
            raise ConfigError("data.subword_sampling reads the training rows in memory: set "
                              "data.streaming=false, or data.subword_sampling=null")
        # Streaming only; runs stored before these became null hold the defaults: accept those.
        if not self.streams and (batching.shuffle_buffer not in (None, SHUFFLE_BUFFER)
                                 or batching.tokenizer_sample not in (None, TOKENIZER_SAMPLE)):
            raise ConfigError("data.shuffle_buffer and data.tokenizer_sample apply to streaming "
                              "only: set data.streaming=true, or leave them null")
        self.sources, self.fields, self.limits, self.batching = sources, fields, limits, batching
        self.builder = SourceBuilder(fields.question_field, source_template=fields.source_template,
                                     truncate_field=fields.truncate_field,
                                     max_length=limits.max_question_length,
                                     reverse_source=fields.reverse_source,
                                     reverse_target=fields.reverse_target)
        self.tokenizer_factory, self.tokenizer = tokenizer, None
        self.splits: dict[str, datasets.Dataset] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self._resume_at = 0  # batches of the epoch trained before a resume

    @property
    def files(self) -> dict[str, str | None]:
        """Split name -> its local file (None where not given)."""
        return self.sources.files

    def _prepare(self) -> Prepare:
        return Prepare(self.builder, self.fields.answer_field, self.fields.family_field)

    # ----- files and tokenizer ----------------------------------------------------------------
    def prepare_data(self) -> None:
        missing = [f for f in self.files.values() if f and not Path(f).exists()]
        if missing and self.sources.generate is not None:
            self.sources.generate()
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
        sources, targets = self.training_texts()
        self.tokenizer = self.tokenizer_factory(sources + targets)
        log.info("trained a %d-piece tokenizer on %d training rows", self.tokenizer.vocab_size,
                 len(sources))
        return self.tokenizer

    def training_texts(self) -> tuple[list[str], list[str]]:
        """The training split's sources and targets, as the tokenizer is trained on them."""
        train = self.prepared("train")
        return column(train, "source"), column(train, "target")

    # ----- splits ------------------------------------------------------------------------------
    def where(self, split: str) -> str:
        """How to name ``split``'s source in messages."""
        path, name = self.sources.path, self.sources.name
        if path:
            return f"{path}" + (f" ({name})" if name else "") + \
                f" split {self.sources.split_name(split)!r}"
        return str(self.files[split])

    def load(self, split: str) -> tuple[datasets.Dataset | datasets.IterableDataset, list[int] | None]:
        """Raw rows of ``split`` (a stream when :attr:`streams`), and each row's line number when
        the source has lines and is read whole."""
        read = {"cache_dir": self.sources.cache_dir,
                **({"streaming": True} if self.streams else {})}
        if self.sources.path:
            return datasets.load_dataset(self.sources.path, self.sources.name,
                                         split=self.sources.split_name(split), **read), None
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
        check = self._prepare().problem
        rows, lines, problems = scan_jsonl(file, check)
        if not problems:
            raise DataError(f"{file}: could not be loaded as JSON Lines: {error}") from error
        self._report(split, problems)
        return datasets.Dataset.from_list(rows), lines

    def prepared(self, split: str) -> datasets.Dataset:
        """Checked rows of ``split`` with ``source``, ``target`` and ``family`` columns."""
        ds, lines = self.load(split)
        prepare = self._prepare()
        try:
            ds = ds.map(prepare, batched=True, num_proc=self.sources.num_proc,
                        desc=f"preparing {split}")
        except UnicodeDecodeError as e:  # pyarrow reads JSON without checking its UTF-8
            if self.sources.path:
                raise DataError(f"{self.where(split)}: text that is not valid UTF-8 ({e})") from e
            ds, lines = self._scan(split, e)
            ds = ds.map(prepare, batched=True, desc=f"preparing {split}")
        flagged = [(i, p) for i, p in enumerate(column(ds, "problem")) if p]
        if flagged:
            self._report(split, [(lines[i] if lines else f"row {i + 1}", p) for i, p in flagged])
            ds = ds.filter(lambda problem: problem is None, input_columns="problem")
        if len(ds) == 0:
            raise DataError(f"{self.where(split)}: no usable rows (every row was skipped)")
        if split == "train" and self.limits.max_train_examples:
            ds = ds.select(range(min(self.limits.max_train_examples, len(ds))))
        return ds

    def split(self, split: str) -> datasets.Dataset:
        """``split`` tokenised: ``src_ids``, ``tgt_ids``, ``index`` columns (cached)."""
        if split not in self.splits:
            if self.tokenizer is None:
                raise ConfigError("no tokenizer yet: call fit_tokenizer() or use_tokenizer()")
            self.splits[split] = self._encoded(
                split, Encode(self.tokenizer, self.builder, self.limits.max_answer_length))
        return self.splits[split]

    def _encoded(self, split: str, encode: Encode) -> datasets.Dataset:
        ds = self.prepared(split).map(encode, batched=True, with_indices=True,
                                      num_proc=self.sources.num_proc,
                                      desc=f"tokenising {split}")
        flags = column(ds, "truncated")
        truncated = sum(flags)
        overlength = self.limits.overlength
        if truncated and overlength == "error":
            first = flags.index(True)
            raise DataError(f"{self.where(split)}: {truncated} rows exceed the length limits "
                            f"(first: row {first + 1}); raise data.max_question_length/"
                            "max_answer_length or set data.overlength=truncate|drop")
        if truncated and overlength == "drop":
            ds = ds.filter(lambda t: not t, input_columns="truncated")
        if truncated:
            longest = [max(n) for n in zip(*column(ds, "lengths"))] if overlength != "drop" \
                else None
            fits = "" if longest is None else (
                f"; data.max_question_length={longest[0]} data.max_answer_length={longest[1]} "
                "would fit every row")
            log.warning("%s: %d rows (%.0f%%) over the length limits %s were %s%s",
                        self.where(split), truncated, 100 * truncated / len(flags),
                        (self.limits.max_question_length, self.limits.max_answer_length),
                        "dropped" if overlength == "drop" else "truncated", fits)
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
        BadRows(self.where(split), self.limits.on_bad_row == "skip").all(problems)

    # ----- loaders -----------------------------------------------------------------------------
    def lengths(self, split: str) -> list[tuple[int, int]]:
        ds = self.split(split)
        return [(len(s), len(t) + 1) for s, t in zip(column(ds, "src_ids"), column(ds, "tgt_ids"))]

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        columns, batch, options = ["src_ids", "tgt_ids", "index"], collate, self.batching
        if shuffle and options.subword_sampling:
            columns, batch = columns + ["source", "target"], self._sampled_collate()
        ds = self.split(split).select_columns(columns)
        replica = replica_shard()
        if options.max_tokens and replica["num_replicas"] > 1:
            raise ConfigError("data.max_tokens gives each process a different number of batches, "
                              "which data-parallel training cannot take: use data.batch_size")
        sampler = LengthBucketBatchSampler(
            self.lengths(split), options.batch_size if shuffle else options.eval_batch_size,
            shuffle=shuffle, window=options.sort_window,
            max_tokens=options.max_tokens if shuffle else None, seed=options.seed, **replica)
        if shuffle:
            questions, answers = sampler.padding_fraction()
            log.info("%s: %d batches; padding: %.1f%% of question positions (encoder), %.1f%% "
                     "of answer positions (decoder)", split, len(sampler), 100 * questions,
                     100 * answers)
        # Its own generator: creating an iterator then draws no number from torch's global RNG,
        # so dropout masks do not depend on how many loaders were iterated (resume = no resume).
        return (ResumableLoader if shuffle else DataLoader)(
            ds, batch_sampler=sampler, collate_fn=batch, num_workers=options.num_workers,
            persistent_workers=options.num_workers > 0,
            generator=torch.Generator().manual_seed(options.seed))

    def _sampled_collate(self) -> SampledCollate:
        try:
            self.tokenizer.encode_sampled(["probe"], self.batching.subword_sampling)
        except RuntimeError:
            raise ConfigError("data.subword_sampling samples segmentations of a bpe or unigram "
                              "tokenizer: set data.tokenizer.model_type=bpe|unigram, or "
                              "data.subword_sampling=null") from None
        return SampledCollate(self.tokenizer, self.builder, alpha=self.batching.subword_sampling,
                              max_answer_length=self.limits.max_answer_length,
                              seed=self.batching.seed)

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
