"""The data module a ``data=`` config describes: the configs' ``_target_``.

A ``data=`` config is flat (``data.batch_size``, ``data.train_file``); :func:`make_datamodule`
sorts its keys into the groups of :mod:`qa_seq2seq.data.options` and builds the module.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from qa_seq2seq.data.datamodule import QADataModule
from qa_seq2seq.data.options import GROUPS
from qa_seq2seq.data.streaming import StreamingQADataModule
from qa_seq2seq.data.tokenizer import Tokenizer

GROUP_OF = {f.name: group for group, cls in GROUPS.items() for f in dataclasses.fields(cls)}


def make_datamodule(streaming: bool = False,
                    tokenizer: Callable[[list[str]], Tokenizer] | None = None,
                    **options: Any) -> QADataModule:
    """:class:`QADataModule` (with ``streaming=true`` the :class:`StreamingQADataModule`, which
    reads splits while iterating) from a flat ``data=`` config: ``tokenizer`` is its factory
    (a ``_partial_`` of ``Tokenizer.train``), every other key belongs to one of
    :mod:`qa_seq2seq.data.options`' groups."""
    grouped: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    for key, value in options.items():
        if key not in GROUP_OF:  # the wording Hydra's and the registry's key hints read
            raise TypeError(f"make_datamodule() got an unexpected keyword argument '{key}'")
        grouped[GROUP_OF[key]][key] = value
    groups = {group: GROUPS[group](**values) for group, values in grouped.items()}
    return (StreamingQADataModule if streaming else QADataModule)(tokenizer=tokenizer, **groups)


# Every key a data config may hold, so that signature checks (the registry, unknown-key hints)
# see them all rather than ``**options``.
_own = inspect.signature(make_datamodule)
make_datamodule.__signature__ = _own.replace(parameters=[
    *list(_own.parameters.values())[:2],
    *(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                        annotation=f.type)
      for cls in GROUPS.values() for f in dataclasses.fields(cls))])
