"""Nothing lost: kill -9 and resume, a kill during a save, Ctrl-C/SIGTERM, changed configs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from qa_seq2seq.decoding.checkpoint import read_checkpoint
from tests.conftest import toy_data_overrides

ROOT = Path(__file__).resolve().parents[2]
# Early stopping is on (the default callbacks) and so is a warmup + cosine schedule: both states
# must survive an interruption for the weights to match.
BASE = ["+experiment=smoke", "run_name=r", "data.max_train_examples=640", "trainer.max_epochs=3",
        "callbacks.last.every_n_train_steps=5", "trainer.enable_progress_bar=false",
        "scheduler=cosine", "scheduler.warmup_steps=10", "scheduler.min_lr_ratio=0.1"]


def train(cwd: Path, *overrides: str, timeout=180) -> subprocess.CompletedProcess:
    data = toy_data_overrides(ROOT / ".pytest-data" / "toy")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "qa_seq2seq.train", *BASE, *data, *overrides],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def runs(cwd: Path) -> list[Path]:
    return sorted(p for p in (cwd / "outputs" / "r").iterdir() if p.is_dir())


def weights(run: Path) -> dict[str, torch.Tensor]:
    """The averaged weights (callbacks.ema, on by default) and training's own, by name."""
    checkpoint = read_checkpoint(run / "checkpoints" / "last.ckpt")
    raw = {f"raw.{k}": v for k, v in checkpoint.raw["current_model_state"].items()}
    assert raw and checkpoint.state_dict
    return {**checkpoint.state_dict, **raw}


# one xdist worker: module fixtures built once; every test runs the commands in a subprocess
pytestmark = [pytest.mark.xdist_group(__name__), pytest.mark.cli]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    """The run that the interrupted ones must reproduce."""
    clean = tmp_path_factory.mktemp("clean")
    assert train(clean).returncode == 0
    return runs(clean)[0]


@pytest.fixture(scope="module")
def uninterrupted(clean_run) -> dict[str, torch.Tensor]:
    """Its final weights."""
    return weights(clean_run)


def best(run: Path) -> tuple[int, float, float]:
    """The step of best.ckpt, the best score last.ckpt remembers, and metrics.json's."""
    last = read_checkpoint(run / "checkpoints" / "last.ckpt").raw["callbacks"]
    (score,) = {float(state["best_model_score"]) for key, state in last.items()
                if key.startswith("ModelCheckpoint{'monitor': 'val/exact_match'")}
    metrics = json.loads((run / "metrics.json").read_text())
    return (read_checkpoint(run / "checkpoints" / "best.ckpt").raw["global_step"], score,
            metrics["best_score"])


def assert_same_weights(run: Path, expected: dict[str, torch.Tensor]) -> None:
    assert read_checkpoint(run / "checkpoints" / "last.ckpt").raw["global_step"] == 60
    resumed = weights(run)
    for name in expected:  # same data order, optimizer state and RNG: the same weights
        torch.testing.assert_close(resumed[name], expected[name], atol=1e-6, rtol=1e-5,
                                   msg=name)


def interrupt(cwd: Path, sig: str, at: str, step: int) -> list[str]:
    return ["+callbacks.fault._target_=tests.helpers.InterruptAt", f"+callbacks.fault.step={step}",
            f"+callbacks.fault.signal={sig}", f"+callbacks.fault.at={at}",
            f"+callbacks.fault.marker={cwd / 'sent'}"]


@pytest.mark.train
def test_kill_9_then_resume_auto_matches_an_uninterrupted_run(tmp_path, uninterrupted):
    kill = interrupt(tmp_path, "SIGKILL", "train_batch", 33)
    first = train(tmp_path, *kill)
    assert first.returncode == -signal.SIGKILL
    (run,) = runs(tmp_path)
    assert read_checkpoint(run / "checkpoints" / "last.ckpt").raw["global_step"] == 30
    second = train(tmp_path, *kill, "resume=auto")
    assert second.returncode == 0, second.stderr[-3000:]
    assert (second.stdout + second.stderr).count("resuming mid-epoch: skipping the 10 batches") == 1
    assert "not resumable" not in second.stdout + second.stderr  # Lightning sees a stateful loader
    assert runs(tmp_path) == [run]  # continued in its own directory
    assert list(run.glob("resumed-*/.hydra/config.yaml"))
    assert_same_weights(run, uninterrupted)
    # At or past the end (also with a lower limit): says so, changes and leaves nothing.
    metrics = (run / "metrics.json").read_text()
    for limit in ("trainer.max_epochs=3", "trainer.max_epochs=2"):
        again = train(tmp_path, *kill, "resume=auto", limit)
        output = again.stdout + again.stderr
        assert again.returncode == 0 and "nothing to do" in output, output[-3000:]
        assert "Traceback" not in output
    assert len(list(run.glob("resumed-*"))) == 1  # the real resume's only
    assert (run / "metrics.json").read_text() == metrics


# The fault matrix (README, "Resuming and fault tolerance"): a signal at an event from a step on.
# 20 batches an epoch, 60 in all; last.ckpt every 5 steps; validation at each epoch's end.
FAULTS = [
    ("SIGTERM", "train_batch", 33),  # mid-epoch, between two checkpoints
    *(pytest.param(*fault, marks=pytest.mark.slow) for fault in [
        ("SIGINT", "train_batch", 33),
        ("SIGTERM", "validation", 40),  # during the second epoch's validation
        ("SIGINT", "validation", 20),
        ("SIGKILL", "validation", 20),
        ("SIGKILL", "save", 25),  # while the step-25 checkpoint is being made
        ("SIGTERM", "save", 25),
        ("SIGKILL", "epoch_end", 40),
        ("SIGTERM", "epoch_end", 20),
        ("SIGKILL", "train_batch", 59),  # the last step
    ]),
]


@pytest.mark.parametrize("sig,at,step", FAULTS)
@pytest.mark.train
def test_interrupted_anywhere_then_resumed_matches_an_uninterrupted_run(tmp_path, uninterrupted,
                                                                         sig, at, step):
    fault = interrupt(tmp_path, sig, at, step)
    first = train(tmp_path, *fault)
    output = first.stdout + first.stderr
    if sig == "SIGKILL":
        assert first.returncode == -signal.SIGKILL
    else:  # the step finishes, last.ckpt is saved there, the epoch is not closed
        assert first.returncode == 128 + getattr(signal, sig), output[-3000:]
        assert f"received {sig}" in output and "continue with resume=auto" in output
        assert "Traceback" not in output
    second = train(tmp_path, *fault, "resume=auto")
    assert second.returncode == 0, second.stderr[-3000:]
    assert_same_weights(runs(tmp_path)[0], uninterrupted)


@pytest.mark.parametrize("kill", [True, False], ids=["killed", "disk_full"])
@pytest.mark.train
def test_a_save_cut_short_leaves_the_previous_checkpoint_wherever_tmpdir_is(
        tmp_path, uninterrupted, monkeypatch, kill):
    # TMPDIR on another filesystem than the run, where one exists: a temporary file there would
    # reach the checkpoint by a copy, which a kill or a full disk can cut short.
    shm = Path("/dev/shm")
    elsewhere = shm.is_dir() and shm.stat().st_dev != tmp_path.stat().st_dev
    tmpdir = Path(tempfile.mkdtemp(dir=shm if elsewhere else tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    # From step 27, no file may grow past 300 kB: the step-30 last.ckpt (~650 kB) is cut short.
    limit = ["+callbacks.fault._target_=tests.helpers.LimitFileSize", "+callbacks.fault.step=27",
             "+callbacks.fault.limit=300000", f"+callbacks.fault.kill={kill}",
             f"+callbacks.fault.marker={tmp_path / 'limited'}"]
    first = train(tmp_path, *limit)
    output = first.stdout + first.stderr
    (run,) = runs(tmp_path)
    if kill:
        assert first.returncode == -signal.SIGXFSZ, output[-3000:]
    else:  # the disk-full message, once, and no traceback
        assert first.returncode == 2, output[-3000:]
        assert output.count(f"error: cannot write {run}/checkpoints/last.ckpt: File too large; "
                            "the previous checkpoint there, if any, is intact") == 1, output[-3000:]
        assert "Traceback" not in output
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert read_checkpoint(run / "checkpoints" / "last.ckpt").raw["global_step"] == 25
    assert not [p for p in tmpdir.rglob("*") if p.is_file()]  # nothing went through TMPDIR
    second = train(tmp_path, *limit, "resume=auto")
    assert second.returncode == 0, second.stderr[-3000:]
    assert_same_weights(run, uninterrupted)
    assert not list((run / "checkpoints").glob(".*.tmp"))  # a killed write's leftover is gone


@pytest.mark.train
def test_a_moved_run_resumes_with_its_best_checkpoint_and_score(tmp_path, clean_run,
                                                                uninterrupted):
    kill = interrupt(tmp_path, "SIGKILL", "train_batch", 33)  # after epoch 1's best.ckpt
    assert train(tmp_path, *kill).returncode == -signal.SIGKILL
    (run,) = runs(tmp_path)
    moved = tmp_path / "elsewhere" / run.name
    shutil.move(run, moved)
    second = train(tmp_path, *kill, f"resume={moved}")
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert "dirpath has changed" not in output and "the run moved from" in output
    assert_same_weights(moved, uninterrupted)
    assert best(moved) == best(clean_run)


@pytest.mark.train
def test_a_changed_data_file_is_refused_on_resume_unless_accepted(tmp_path):
    data = tmp_path / "data"
    kill = [*interrupt(tmp_path, "SIGKILL", "train_batch", 33), *toy_data_overrides(data)]
    assert train(tmp_path, *kill).returncode == -signal.SIGKILL
    (run,) = runs(tmp_path)
    saved = (run / "checkpoints" / "last.ckpt").read_bytes()
    with (data / "train.jsonl").open("a") as f:
        f.write('{"question": "What is 1 plus 1?", "answer": "2"}\n')
    refused = train(tmp_path, *kill, "resume=auto")
    output = refused.stdout + refused.stderr
    assert refused.returncode == 2, output[-3000:]
    assert f"error: resume: the data changed since step 30 was saved:\n  data.train_file={data}/" \
           "train.jsonl: " in output and "resume_data_changed=accept" in output
    assert "Traceback" not in output and "validation_file" not in output  # only what changed
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == saved
    assert not list(run.glob("resumed-*"))
    accepted = train(tmp_path, *kill, "resume=auto", "resume_data_changed=accept")
    output = accepted.stdout + accepted.stderr
    assert accepted.returncode == 0, output[-3000:]
    assert "resume_data_changed=accept: the data changed" in output
    assert "some of its rows are skipped or seen twice" in output
    assert read_checkpoint(run / "checkpoints" / "last.ckpt").raw["global_step"] >= 60


@pytest.mark.train
def test_changed_config_on_resume_is_refused_with_the_keys(tmp_path):
    assert train(tmp_path).returncode == 0
    result = train(tmp_path, "resume=auto", "optimizer.lr=0.1", "model.net.dropout=0.3")
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "optimizer.lr: run has 0.002, given 0.1" in output
    assert "model.net.dropout" in output and "model.init_from.checkpoint=" in output
    assert "Traceback" not in output
    assert not list(runs(tmp_path)[0].glob("resumed-*"))  # a refused resume leaves nothing
    longer = train(tmp_path, "resume=auto", "trainer.max_epochs=4")
    assert longer.returncode == 0
    assert read_checkpoint(runs(tmp_path)[0] / "checkpoints" / "last.ckpt").raw["global_step"] \
        == 80


@pytest.mark.cli
def test_resume_auto_without_a_run_explains(tmp_path):
    result = train(tmp_path, "resume=auto")
    assert result.returncode == 2
    assert "no run of run_name='r'" in result.stdout + result.stderr


SAVER = """
import sys, torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
io, path, i = TorchCheckpointIO(), sys.argv[1], 0
while True:
    i += 1
    io.save_checkpoint({"i": i, "w": torch.full((4_000_000,), float(i))}, path)
    print(i, flush=True)
"""


@pytest.mark.train
def test_a_kill_during_a_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "last.ckpt"
    for delay in (0.05, 0.13, 0.21, 0.37):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline()  # at least one complete save
        time.sleep(delay)  # then kill at an arbitrary point, often mid-write
        proc.kill()
        proc.wait()
        ckpt = torch.load(path, weights_only=True)
        assert torch.all(ckpt["w"] == float(ckpt["i"]))


@pytest.mark.train
def test_decay_from_step_resumed_before_the_switch_decays_as_an_uninterrupted_run(tmp_path):
    """Killed at step 13 (last.ckpt at 10), decay from step 20: the resumed run must switch the
    decay on at step 20 as the uninterrupted one does, and differ from a run decayed throughout."""
    decay = ["optimizer=adamw", "optimizer.weight_decay=0.5", "trainer.max_epochs=2"]
    finals = {}
    for name, start in (("clean", 20), ("killed", 20), ("always", 0)):
        cwd = tmp_path / name
        cwd.mkdir()
        overrides = [*decay, f"optimizer.decay_from_step={start}"]
        if name == "killed":
            kill = interrupt(cwd, "SIGKILL", "train_batch", 13)
            assert train(cwd, *overrides, *kill).returncode == -signal.SIGKILL
            overrides += [*kill, "resume=auto"]
        result = train(cwd, *overrides)
        assert result.returncode == 0, result.stderr[-3000:]
        finals[name] = weights(runs(cwd)[0])
    for name in finals["clean"]:
        torch.testing.assert_close(finals["killed"][name], finals["clean"][name], atol=1e-6,
                                   rtol=1e-5, msg=name)
    assert any(not torch.allclose(finals["always"][n], finals["clean"][n]) for n in finals["clean"])
