"""What a stored config may build: an exact set of targets for each place in it.

A checkpoint or export stores the network and data configs it was trained with, written by
whoever made the file. Rebuilding from them must call nothing the file names, so a stored config
is read as data: each place that builds an object (the network, its cells, attention and sharing;
the data module, its tokenizer and generator; an initializer) accepts only the fully qualified
names listed here, with the ``_partial_`` this table gives. Every other value must be plain data
(numbers, strings, booleans, null, lists and string-keyed maps of them): no ``_target_`` outside
those places, no ``_args_``, ``_call_``, ``_recursive_`` or other ``_keys_``, no ``${...}``
interpolations or resolvers. What is imported is this module's own name for the target.

Imports nothing heavy: the decoding CLI loads checkpoints through it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping
from typing import Any, NamedTuple

from qa_seq2seq.compatibility import current
from qa_seq2seq.errors import CheckpointError, UserError

MAX_DEPTH = 32  # nesting deeper than any config of ours: refused before Python's recursion limit


class Target(NamedTuple):
    """A callable a stored config may name, and whether the config stores it as a factory
    (``_partial_: true``, called later with more arguments) or as the object it builds."""

    module: str
    attribute: str  # may be dotted: ``Tokenizer.train``
    partial: bool

    @property
    def name(self) -> str:
        return f"{self.module}.{self.attribute}"

    def load(self) -> Any:
        found: Any = importlib.import_module(self.module)
        for part in self.attribute.split("."):
            found = getattr(found, part)
        return found


def _targets(*targets: Target) -> dict[str, Target]:
    return {t.name: t for t in targets}


CELLS = _targets(*(Target("qa_seq2seq.network.rnn", cell, True)
                   for cell in ("LSTM", "GRU", "RNN", "PeepholeLSTM", "LayerNormLSTM")))

# Place in the config ("" its root, else a dotted key) -> the targets built there.
NETWORK = {
    "": _targets(Target("qa_seq2seq.network.builder", "build_network", False)),
    "cell": CELLS, "encoder_cell": CELLS, "decoder_cell": CELLS,
    "attention": _targets(Target("qa_seq2seq.network.attention", "Attention", True)),
    "sharing": _targets(Target("qa_seq2seq.network.sharing", "Sharing", False)),
}
DATA = {
    "": _targets(Target("qa_seq2seq.data.factory", "make_datamodule", False)),
    "tokenizer": _targets(Target("qa_seq2seq.data.tokenizer", "Tokenizer.train", True)),
    "generate": _targets(*(Target(f"qa_seq2seq.data.{module}", "ensure_splits", True)
                           for module in ("arith", "characters", "passages", "toy"))),
}
INITIALIZER = {"": _targets(Target("qa_seq2seq.network.initializers", "Initializer", False))}


def build(config: Any, places: Mapping[str, Mapping[str, Target]], where: str) -> Any:
    """Build the object ``config`` describes (``places``: NETWORK, DATA or INITIALIZER).

    Anything the table does not allow, and any error while building, raises one
    :class:`CheckpointError` naming ``where`` (the file and which of its configs) and the key.
    """
    check(config, places, where)
    try:
        return _build(config, places, "")
    except RecursionError:
        raise CheckpointError(f"{where}: nested too deeply to be a qa_seq2seq config") from None
    except (UserError, TypeError, ValueError, AttributeError, KeyError, IndexError,
            RuntimeError) as e:
        detail = " ".join(str(e).split())[:400]
        raise CheckpointError(f"{where}: does not describe what this version of qa_seq2seq "
                              f"builds: {type(e).__name__}: {detail}") from None


def check(config: Any, places: Mapping[str, Mapping[str, Target]], where: str) -> None:
    """Refuse ``config`` unless every place that builds names an allowed target and everything
    else is plain data (see the module docstring); calls nothing."""
    _check_node(config, places, "", where)


def _check_node(node: Any, places: Mapping[str, Mapping[str, Target]], key: str,
                where: str) -> None:
    allowed = places[key]
    shown = key or "the config's root"
    if not isinstance(node, Mapping) or "_target_" not in node:
        raise CheckpointError(f"{where}: {shown} must be a config with a _target_ among "
                              f"{sorted(allowed)}; found {_kind(node)}")
    name = current(node["_target_"])
    target = allowed.get(name) if isinstance(name, str) else None
    if target is None:
        named = repr(name) if isinstance(name, str) else _kind(name)
        raise CheckpointError(
            f"{where}: refused _target_ {named} at {shown}: a stored config is data, and only "
            f"{', '.join(sorted(allowed))} may be built there, so that loading a file cannot run "
            "its author's code")
    if node.get("_partial_", False) is not target.partial:
        raise CheckpointError(f"{where}: {shown}: _partial_ must be {str(target.partial).lower()} "
                              f"for {name}, found {node.get('_partial_')!r}")
    for child, value in node.items():
        if child in ("_target_", "_partial_"):
            continue
        path = _join(key, child)
        if not isinstance(child, str) or child.startswith("_"):
            raise CheckpointError(f"{where}: refused key {path!r}: special keys (_args_, _call_, "
                                  "_recursive_, _convert_...) are not read from a stored config")
        if path in places and not _empty(value):
            _check_node(value, places, path, where)
        else:
            _check_plain(value, path, where, depth=0)


def _check_plain(value: Any, key: str, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CheckpointError(f"{where}: {key} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if "${" in value:
            raise CheckpointError(f"{where}: {key}={value!r}: interpolations and resolvers "
                                  "(${...}) are not read from a stored config")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{key}[{i}]", where, depth + 1)
        return
    if isinstance(value, Mapping):
        for child, item in value.items():
            path = _join(key, child)
            if not isinstance(child, str) or child.startswith("_"):
                raise CheckpointError(f"{where}: refused key {path!r}: a stored config builds "
                                      "objects only where qa_seq2seq builds them, and special "
                                      "keys (_target_, _args_...) nowhere else")
            _check_plain(item, path, where, depth + 1)
        return
    raise CheckpointError(f"{where}: {key} holds {_kind(value)}, not plain data")


def _build(node: Mapping[str, Any], places: Mapping[str, Mapping[str, Target]], key: str) -> Any:
    """Build a checked node: its children first, then its own target with them."""
    target = places[key][current(node["_target_"])]
    kwargs = {}
    for child, value in node.items():
        if child in ("_target_", "_partial_"):
            continue
        path = _join(key, child)
        if path in places:
            kwargs[child] = None if _empty(value) else _build(value, places, path)
        else:
            kwargs[child] = value
    function = target.load()
    signature = inspect.signature(function)
    try:
        signature.bind_partial(**kwargs) if target.partial else signature.bind(**kwargs)
    except TypeError as e:
        raise TypeError(f"{key or 'root'} ({target.name}): {e}") from None
    return functools.partial(function, **kwargs) if target.partial else function(**kwargs)


def _empty(value: Any) -> bool:
    """Nothing built at a place: null, or an empty group (``model/net/attention=none``)."""
    return value is None or (isinstance(value, Mapping) and not value)


def _join(key: str, child: Any) -> str:
    return f"{key}.{child}" if key else str(child)


def _kind(value: Any) -> str:
    return f"a {type(value).__name__}"
