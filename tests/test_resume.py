"""Nothing lost: kill -9 and resume, a kill during a save, Ctrl-C/SIGTERM, changed configs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qa_seq2seq.checkpoint import read_checkpoint
from tests.conftest import toy_data_overrides

ROOT = Path(__file__).resolve().parents[1]
BASE = ["+experiment=smoke", "run_name=r", "data.max_train_examples=640", "trainer.max_epochs=3",
        "callbacks.last.every_n_train_steps=5", "trainer.enable_progress_bar=false"]


def train(cwd: Path, *overrides: str, timeout=180) -> subprocess.CompletedProcess:
    data = toy_data_overrides(ROOT / ".pytest-data" / "toy")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "qa_seq2seq.train", *BASE, *data, *overrides],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def runs(cwd: Path) -> list[Path]:
    return sorted(p for p in (cwd / "outputs" / "r").iterdir() if p.is_dir())


def weights(run: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run / "checkpoints" / "last.ckpt").state_dict


def test_kill_9_then_resume_auto_matches_an_uninterrupted_run(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir(), killed.mkdir()
    assert train(clean).returncode == 0
    kill = ["+callbacks.kill._target_=tests.helpers.KillAt", "+callbacks.kill.step=33",
            f"+callbacks.kill.marker={killed / 'killed'}"]
    first = train(killed, *kill)
    assert first.returncode == -signal.SIGKILL
    (run,) = runs(killed)
    assert read_checkpoint(run / "checkpoints" / "last.ckpt").raw["global_step"] == 30
    second = train(killed, *kill, "resume=auto")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout + second.stderr
    assert runs(killed) == [run]  # continued in its own directory
    assert list(run.glob("resumed-*/.hydra/config.yaml"))
    expected, resumed = weights(runs(clean)[0]), weights(run)
    assert read_checkpoint(run / "checkpoints" / "last.ckpt").raw["global_step"] == 60
    for name in expected:  # same data order, optimizer state and RNG: the same weights
        torch.testing.assert_close(resumed[name], expected[name], atol=1e-6, rtol=1e-5,
                                   msg=name)
    # Past the end: says so, changes nothing.
    again = train(killed, *kill, "resume=auto")
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr


def test_changed_config_on_resume_is_refused_with_the_keys(tmp_path):
    assert train(tmp_path).returncode == 0
    result = train(tmp_path, "resume=auto", "optimizer.lr=0.1", "model.dropout=0.3")
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "optimizer.lr: run has 0.002, given 0.1" in output
    assert "model.dropout" in output and "model.init_from.checkpoint=" in output
    assert "Traceback" not in output
    longer = train(tmp_path, "resume=auto", "trainer.max_epochs=4")
    assert longer.returncode == 0
    assert read_checkpoint(runs(tmp_path)[0] / "checkpoints" / "last.ckpt").raw["global_step"] \
        == 80


def test_resume_auto_without_a_run_explains(tmp_path):
    result = train(tmp_path, "resume=auto")
    assert result.returncode == 2
    assert "no run of run_name='r'" in result.stdout + result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_last_checkpoint_and_exits_cleanly(tmp_path, sig):
    data = toy_data_overrides(ROOT / ".pytest-data" / "toy")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa_seq2seq.train", *BASE, *data, "trainer.max_epochs=200",
         "~callbacks.early_stopping",
         "callbacks.last.every_n_train_steps=1000"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # wait until training is under way
        if "padding" in line:
            break
    time.sleep(1.0)
    proc.send_signal(sig)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, output[-3000:]
    assert f"received {signal.Signals(sig).name}" in output
    step = read_checkpoint(runs(tmp_path)[0] / "checkpoints" / "last.ckpt").raw["global_step"]
    assert 0 < step < 200 * 20


SAVER = """
import sys, torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
io, path, i = TorchCheckpointIO(), sys.argv[1], 0
while True:
    i += 1
    io.save_checkpoint({"i": i, "w": torch.full((4_000_000,), float(i))}, path)
    print(i, flush=True)
"""


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
