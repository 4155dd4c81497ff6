"""The ``train`` and ``cli`` markers, kept honest: a test that trains or starts a process without
its marker fails, so ``make test-unit`` (``-m "not slow and not train and not cli"``) stays the
quick in-process run."""

import subprocess
import sys
from pathlib import Path

import lightning.pytorch as L
import pytest

# Fixtures that train a model: a test that uses one, directly or through another fixture, is
# marked ``train`` at collection.
TRAINING_FIXTURES = {"smoke_run", "attention_run", "squad_run", "clean_run"}
MARKERS = ("train", "cli")
UNMARKED = {}  # marker -> the test being set up or run, while it lacks that marker


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.train)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _watched(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _watched(item))


def _watched(item):
    for marker in MARKERS:
        UNMARKED[marker] = None if item.get_closest_marker(marker) else item
    try:
        return (yield)
    finally:
        UNMARKED.clear()


def _refuse_unless_marked(marker: str, what: str) -> None:
    if (item := UNMARKED.get(marker)) is not None:
        raise AssertionError(f"{item.nodeid} {what}: mark it (or its module) @pytest.mark.{marker}")


def _is_command(args) -> bool:
    """A Python interpreter, an installed entry point, make or a shell script; not the compilers
    and tools that libraries start (torch.compile runs a C++ compiler)."""
    program = str(args if isinstance(args, str | Path) else args[0])
    return program == sys.executable or Path(program).name.startswith(
        ("python", "qa-seq2seq", "make", "bash", "sh"))


@pytest.fixture(autouse=True, scope="session")
def _markers_kept():
    fit, popen_init = L.Trainer.fit, subprocess.Popen.__init__

    def watched_fit(self, *args, **kwargs):
        _refuse_unless_marked("train", "trains a model")
        return fit(self, *args, **kwargs)

    def watched_popen_init(self, args, *rest, **kwargs):
        if kwargs.get("shell") or _is_command(args):
            _refuse_unless_marked("cli", f"runs a command ({args!r:.80})")
        popen_init(self, args, *rest, **kwargs)

    L.Trainer.fit, subprocess.Popen.__init__ = watched_fit, watched_popen_init
    yield
    L.Trainer.fit, subprocess.Popen.__init__ = fit, popen_init
