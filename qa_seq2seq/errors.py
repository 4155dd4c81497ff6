"""Errors a user can fix, and the one way every entry point reports them: one message naming
what is wrong, exit status 2, no traceback (:func:`entry_point`)."""

from __future__ import annotations

import difflib
import errno
import functools
import importlib
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("qa_seq2seq")
F = TypeVar("F", bound=Callable[..., Any])


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


# A write the machine refused: a full disk or quota, a file too large, a read-only or unwritable
# folder. The user's to fix, not a bug.
FULL, UNWRITABLE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}, {errno.EROFS, errno.EACCES, errno.EPERM}


def refused_write(error: BaseException | None) -> str | None:
    """The message for ``error`` (or its cause) when it is a write the machine refused, else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in FULL | UNWRITABLE:
            fix = "free some space" if error.errno in FULL else \
                "choose a writable output folder (output_dir, hydra.run.dir) or fix its permissions"
            where = f"{error.filename}: " if error.filename else ""
            return f"{where}{error.strerror}: {fix}"
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def entry_point(main: F) -> F:
    """Wrap a command's ``main``: a :class:`UserError` (also one wrapped by Hydra or Lightning)
    or a write the machine refused (a full disk, a read-only folder) becomes ``error: <message>``
    and exit status 2; output cut short by a closed pipe
    (``... | head``) ends quietly; Ctrl-C exits 130. Anything else is a bug and keeps its
    traceback."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt:
            sys.exit(130)
        except BrokenPipeError:
            # The reader left: silence the flush Python retries at exit (Python's docs' recipe).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)  # 128 + SIGPIPE, as a shell reports it
        except Exception as e:
            if (cause := user_error(e) or refused_write(e)) is None:
                raise
            log.error("error: %s", cause)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
