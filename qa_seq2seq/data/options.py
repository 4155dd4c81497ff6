"""The data module's settings in four groups: where rows come from, which fields they use, the
limits on them, and how they are batched. A ``data=`` config is flat (``data.batch_size``);
:func:`qa_seq2seq.data.factory.make_datamodule` sorts its keys into these groups.

Each group checks its own values when it is made, so a bad key fails before any file is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_seq2seq.errors import ConfigError

SPLITS = ("train", "validation", "test")
BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Sources:
    """Where the rows come from.

    ``train_file``, ``validation_file``, ``test_file``: local files (.jsonl, .json, .csv,
    .parquet); or instead ``path`` (and ``name``) for ``datasets.load_dataset``, with
    ``split_names`` mapping train/validation/test to the source's split names. ``generate`` is
    called with no arguments when a split file is missing (the generated data sets);
    ``num_proc``: processes for ``Dataset.map``; ``cache_dir``: the ``datasets`` cache.
    """

    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    path: str | None = None
    name: str | None = None
    split_names: dict[str, str] | None = None
    cache_dir: str | None = None
    num_proc: int | None = None
    generate: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.train_file is None):
            raise ConfigError("give either data.path (a datasets source) or data.train_file "
                              f"(local files), not {'both' if self.path else 'neither'}")
        for split, file in self.files.items():
            if file and Path(file).suffix not in BUILDERS:
                problem = "unknown file type" if Path(file).exists() else "not found"
                raise ConfigError(f"data.{split}_file={file}: {problem}; give a .jsonl, .json, "
                                  ".csv or .parquet file")

    @property
    def files(self) -> dict[str, str | None]:
        """Split name -> its local file (None where not given)."""
        return dict(zip(SPLITS, (self.train_file, self.validation_file, self.test_file)))

    def split_name(self, split: str) -> str:
        """What the ``path`` source calls ``split``."""
        return (self.split_names or {}).get(split, split)


@dataclass(frozen=True)
class Fields:
    """Which fields of a row make its source and target.

    ``question_field`` and ``answer_field`` (which may be a nested path, ``answers.text[0]``);
    ``source_template`` (``"question: {question} context: {context}"``) replaces
    ``question_field``, and ``truncate_field`` names the template field cut first when a source is
    too long. ``reverse_source``: the encoder reads each source's tokens last to first (Sutskever
    et al. 2014); ``reverse_target``: the decoder writes answers last to first, turned back before
    they are shown or scored. Both are stored with the model, so evaluation and the CLI do the
    same. ``family_field``: an optional field grouping metrics by question family.
    """

    question_field: str = "question"
    answer_field: str = "answer"
    source_template: str | None = None
    truncate_field: str | None = None
    reverse_source: bool = False
    reverse_target: bool = False
    family_field: str | None = None


@dataclass(frozen=True)
class Limits:
    """What is done with rows that are too long or broken.

    ``max_question_length``, ``max_answer_length``: in tokens; longer rows are truncated
    (``overlength=truncate``), dropped (``drop``) or refused (``error``), always counted.
    ``on_bad_row``: ``error`` (stop with file:line) or ``skip`` (drop, count and log).
    ``max_train_examples``: use only the first N training rows (quick experiments).
    """

    max_question_length: int = 256
    max_answer_length: int = 64
    overlength: str = "truncate"
    on_bad_row: str = "error"
    max_train_examples: int | None = None

    def __post_init__(self) -> None:
        if self.on_bad_row not in ("error", "skip"):
            raise ConfigError(f"data.on_bad_row={self.on_bad_row!r}: use 'error' or 'skip'")
        if self.overlength not in ("truncate", "drop", "error"):
            raise ConfigError(f"data.overlength={self.overlength!r}: use 'truncate', 'drop' or "
                              "'error'")


@dataclass(frozen=True)
class Batching:
    """How rows are grouped into batches and read.

    ``batch_size`` rows per training batch, ``max_tokens`` caps its padded tokens too;
    ``eval_batch_size`` rows per validation/test batch (sorted by length, not shuffled);
    ``sort_window``: batches per sort window when shuffling (larger: less padding, less random);
    ``subword_sampling``: segment each training batch's words one sampled way (BPE-dropout or
    unigram sampling with this alpha); None reads the tokenizer's best segmentation, as
    validation and decoding always do. ``shuffle_buffer`` and ``tokenizer_sample`` apply to
    streaming only (None: 10,000 rows shuffled at a time, the tokenizer trained on the first
    100,000). ``seed`` orders the batches; ``num_workers``: loader processes.
    """

    batch_size: int = 64
    eval_batch_size: int = 256
    max_tokens: int | None = None
    sort_window: int = 100
    subword_sampling: float | None = None
    shuffle_buffer: int | None = None
    tokenizer_sample: int | None = None
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.subword_sampling is not None and not 0 < self.subword_sampling <= 1:
            raise ConfigError(f"data.subword_sampling={self.subword_sampling}: give an alpha in "
                              "(0, 1], e.g. 0.1, or null for the tokenizer's best segmentation")


GROUPS = {"sources": Sources, "fields": Fields, "limits": Limits, "batching": Batching}
