"""A checkpoint from someone else runs no code through any entry point that loads one.

One hostile run directory (its checkpoints carry a pickled object whose unpickling would create
a file) goes through every path: the decoding CLI, the Python API, evaluate, parameters, resuming,
and a warm start. Each must refuse it with a message and leave the file uncreated.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qa_seq2seq.decoding.checkpoint import CheckpointError
from qa_seq2seq.decoding.runs import resolve_checkpoint
from qa_seq2seq.errors import UserError, user_error
from tests.conftest import compose_evaluate, compose_train, toy_data_overrides

ROOT = Path(__file__).resolve().parents[1]


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def hostile_run(tmp_path, smoke_run):
    """A copy of the smoke run whose checkpoints would run ``touch <marker>`` if unpickled."""
    run_dir, marker = tmp_path / "hostile", tmp_path / "pwned"
    shutil.copytree(smoke_run[0], run_dir)
    ckpt = torch.load(resolve_checkpoint(smoke_run[0]), weights_only=True)
    ckpt["qa_seq2seq"]["extra"] = Exploit(marker)
    for name in ("best.ckpt", "last.ckpt"):
        torch.save(ckpt, run_dir / "checkpoints" / name)
    yield run_dir
    assert not marker.exists(), "code from the checkpoint ran"


def run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, input="What is 3 plus 4?\n", timeout=120)


@pytest.mark.parametrize("command", ["-m qa_seq2seq.decode --checkpoint {run}",
                                     "-m qa_seq2seq.parameters --checkpoint {run}"])
@pytest.mark.cli
def test_command_line_tools_refuse_it(hostile_run, command):
    result = run(*command.format(run=hostile_run).split())
    assert result.returncode == 2 and "refused to load" in result.stderr
    assert "Traceback" not in result.stderr


def test_python_api_and_evaluate_refuse_it(hostile_run):
    from qa_seq2seq import Answerer
    from qa_seq2seq.evaluate import evaluate

    with pytest.raises(CheckpointError, match="refused to load"):
        Answerer.from_checkpoint(hostile_run)
    with pytest.raises(CheckpointError, match="refused to load"):
        evaluate(compose_evaluate(hostile_run))


def test_resuming_it_and_warm_starting_from_it_are_refused(hostile_run, smoke_run, tmp_path):
    from qa_seq2seq.train import train

    data = toy_data_overrides(smoke_run[0].parent / "data")  # the run's own config
    resume = compose_train(["+experiment=smoke", *data, f"resume={hostile_run}"], tmp_path / "r")
    with pytest.raises(UserError, match="refused to load"):
        train(resume)
    warm = compose_train(["+experiment=smoke", *data,
                          f"model.init_from.checkpoint={hostile_run}"], tmp_path / "w")
    with pytest.raises(Exception) as raised:  # inside Hydra's instantiate: wrapped
        train(warm)
    assert "refused to load" in str(user_error(raised.value))  # what the entry point prints
