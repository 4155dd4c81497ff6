"""A Hydra multirun gives one run directory per point, and one summary table."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import toy_data_overrides

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.train
@pytest.mark.cli
def test_multirun_and_summary(tmp_path):
    sweep = subprocess.run(
        [sys.executable, "-m", "qa_seq2seq.train", "-m", "+experiment=smoke", "run_name=sweep",
         "model/net/cell=lstm,gru", *toy_data_overrides(ROOT / ".pytest-data" / "toy")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "sweep").glob("multirun_*")
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    table = subprocess.run([sys.executable, str(ROOT / "scripts" / "summarize_runs.py")],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "2 runs" in lines[0] and "val/exact_match" in lines[1]
    assert {line.split()[0] for line in lines[2:]} == {"model/net/cell=lstm", "model/net/cell=gru"}


def test_the_readme_slurm_launcher_composes_for_a_sweep():
    """README: `-m hydra/launcher=slurm hydra.launcher.partition=gpu` (the submitit plugin is a
    dev dependency, so this runs everywhere the tests do; it never submits)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["output_dir=x", "hydra/launcher=slurm",
                                          "hydra.launcher.partition=gpu", "+experiment=toy_lstm"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node) == ("gpu", 240, 1)
