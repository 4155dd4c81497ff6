"""How an entry point talks to its user: one message naming what is wrong, exit status 2, no
traceback (:func:`entry_point`); ``--help`` from its module docstring (:func:`command_parser`)."""

from __future__ import annotations

import argparse
import errno
import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from qa_seq2seq.errors import user_error

log = logging.getLogger("qa_seq2seq")
F = TypeVar("F", bound=Callable[..., Any])

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


def command_parser(prog: str, doc: str, version: str) -> argparse.ArgumentParser:
    """A command's parser whose ``--help`` is its module docstring ``doc`` (the first paragraph
    as the description, the rest as the epilog, line breaks kept), with ``--version``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0],
                                     epilog=doc.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    return parser
