"""Errors a user can fix, and the one way every entry point reports them: one message naming
what is wrong, exit status 2, no traceback (:func:`entry_point`)."""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
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
    """The user error behind ``error``: itself, or the cause a wrapper (Hydra's instantiate,
    Lightning's hooks) raised it from."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        seen.add(id(error))
        error = error.__cause__
    return None


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


NET_CONF = Path(__file__).resolve().parents[1] / "conf" / "model" / "net"


def moved_keys_hint(overrides: list[str]) -> str:
    """A line naming the new place of each override written with a network key under ``model``
    (``model.hidden_size``, ``model/cell``: in the first versions the network's keys and groups
    sat there; now under ``model.net``, as in ``conf/model/net/``), or ''."""
    text = (NET_CONF / "seq2seq.yaml").read_text()
    names = {*re.findall(r"^(\w+):", text, re.M), *(p.name for p in NET_CONF.iterdir() if p.is_dir())}
    pattern = re.compile(rf"^[+~]*(model[./](?:{'|'.join(sorted(names))})\b)")
    moved = [m[1] for o in overrides if (m := pattern.match(o))]
    if not moved:
        return ""
    fixes = ", ".join(f"{old} -> {old[:6]}net{old[5]}{old[6:]}" for old in dict.fromkeys(moved))
    return f"\nThe network's keys moved under model.net: {fixes}"


def compose_errors_exit_2() -> None:
    """Make a config Hydra cannot compose (an unknown key, a bad override, an option missing from
    a group) exit with status 2 like every other user error; Hydra itself exits 1. Call before a
    ``hydra.main`` entry point runs.

    Hydra reports these as ``CompactHydraException`` from inside ``run_and_report``; the shim
    catches exactly those, around the function that Hydra hands it, and leaves the rest of
    Hydra's reporting as it is.
    """
    import hydra._internal.utils as hydra_utils
    from hydra.errors import CompactHydraException

    original = hydra_utils.run_and_report
    if getattr(original, "exits_2", False):
        return

    def run_and_report(func: Callable[[], Any]) -> Any:
        def composed() -> Any:
            try:
                return func()
            except CompactHydraException as e:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                cause = f"\n{e.__cause__}" if e.__cause__ is not None else ""
                print(f"error: {e}{cause}{moved_keys_hint(sys.argv[1:])}", file=sys.stderr)
                sys.exit(2)
            except OSError as e:  # Hydra making the run directory and its .hydra/ files
                if (message := refused_write(e)) is None:
                    raise
                print(f"error: {message}", file=sys.stderr)
                sys.exit(2)

        return original(composed)

    run_and_report.exits_2 = True  # type: ignore[attr-defined]
    hydra_utils.run_and_report = run_and_report
