"""Errors a user can fix, and finding the one behind an error a library wrapped it in
(qa_seq2seq.reporting turns them into one message and exit status 2)."""

from __future__ import annotations

import difflib
import importlib
import inspect
import re


class UserError(Exception):
    """Bad configuration, data or files: the message says which key, line or file, and the fix."""


class ConfigError(UserError, ValueError):
    """An invalid or incompatible configuration value."""


class DataError(UserError, ValueError):
    """Bad input data, with the file and line to look at."""


class CheckpointError(UserError):
    """A checkpoint or run directory that cannot be used, with what to do instead."""


class NonFiniteError(UserError, FloatingPointError):
    """A NaN/inf loss or gradient, with the step and batch where it appeared."""


def user_error(error: BaseException | None) -> UserError | None:
    """The user error behind ``error``: itself, the cause a wrapper (Hydra's instantiate,
    Lightning's hooks) raised it from, or a config key its target does not take."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        if (unknown := unknown_argument(error)) is not None:
            return unknown
        seen.add(id(error))
        error = error.__cause__
    return None


# Hydra's instantiate calling a target with a key it does not take (``+model.net.hiden_size=64``).
UNEXPECTED = re.compile(r"Error in call to target '(?P<target>[\w.]+)':\s*TypeError\(.*?"
                        r"unexpected keyword argument '(?P<arg>\w+)'.*?full_key: (?P<key>[\w.]*)",
                        re.S)


def unknown_argument(error: BaseException) -> ConfigError | None:
    """The key a config added that its target does not take, with the nearest it does, or
    None when ``error`` is something else."""
    if type(error).__name__ != "InstantiationException" or not (m := UNEXPECTED.search(str(error))):
        return None
    module, _, name = m["target"].rpartition(".")
    try:
        taken = list(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
    except (ImportError, AttributeError, TypeError, ValueError):
        taken = []
    prefix = f"{m['key']}." if m["key"] else ""
    near = difflib.get_close_matches(m["arg"], taken, n=3)
    hint = f"; the nearest: {', '.join(prefix + n for n in near)}" if near else ""
    return ConfigError(f"unknown key {prefix}{m['arg']}: {m['target']} takes no {m['arg']!r}{hint}")
