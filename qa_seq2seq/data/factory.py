"""The data module a ``data=`` config describes: the configs' ``_target_``."""

from __future__ import annotations

from typing import Any

from qa_seq2seq.data.datamodule import QADataModule
from qa_seq2seq.data.streaming import StreamingQADataModule


def make_datamodule(streaming: bool = False, **options: Any) -> QADataModule:
    """:class:`QADataModule` with ``options`` (its constructor's arguments), or with
    ``streaming=true`` the :class:`StreamingQADataModule` that reads splits while iterating."""
    return (StreamingQADataModule if streaming else QADataModule)(**options)
