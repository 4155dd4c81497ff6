"""Parameter scopes: glob patterns over parameter names, and freezing.

Patterns use shell globs (``fnmatch``), where ``*`` also crosses dots: ``decoder.*.weight_hh*``
matches ``decoder.rnn.weight_hh_l0``. A pattern that matches nothing is a configuration error,
so a typo never silently does nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from torch import nn

from qa_seq2seq.errors import ConfigError


def owner_of(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module holding parameter ``name``, and the parameter's name within it."""
    owner_path, _, local = name.rpartition(".")
    return (model.get_submodule(owner_path) if owner_path else model), local


def aliases(model: nn.Module) -> dict[int, list[str]]:
    """Every name of each parameter, keyed by ``id`` (a shared parameter has several names)."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return names


def match(names: Iterable[str], patterns: Sequence[str], key: str) -> dict[str, list[str]]:
    """``{pattern: [matching names]}``; raises if a pattern matches nothing.

    ``key`` names the config entry the patterns came from, for the error message.
    """
    names = list(names)
    matches = {pattern: fnmatch.filter(names, pattern) for pattern in patterns}
    empty = [pattern for pattern, found in matches.items() if not found]
    if empty:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise ConfigError(
            f"{key}: pattern(s) {empty} match no parameter. Parameter names look like: {shown} "
            f"(see `python -m qa_seq2seq.parameters` for the full list)"
        )
    return matches


def select(model: nn.Module, patterns: Sequence[str], key: str) -> dict[str, nn.Parameter]:
    """``{name: parameter}`` for every name (a shared parameter's aliases too) matching one of
    ``patterns``, sorted by name; raises, naming ``key``, if a pattern matches nothing."""
    params = dict(model.named_parameters(remove_duplicate=False))
    found = {n for names in match(params, patterns, key).values() for n in names}
    return {name: params[name] for name in sorted(found)}


def freeze_(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Set ``requires_grad=False`` on every parameter matching one of ``patterns``."""
    frozen = select(model, patterns, "model.freeze")
    for param in frozen.values():
        param.requires_grad_(False)
    return list(frozen)
