"""The accuracy benchmark runs end to end: real entry points, the reference row, the summary."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.train
@pytest.mark.cli
def test_bench_accuracy_trains_evaluates_and_summarises(tmp_path):
    data = tmp_path / "toy"
    data_args = " ".join([f"data.{s}_file={data}/{s}.jsonl" for s in ("train", "validation", "test")]
                         + [f"data.generate.out_dir={data}"])
    from qa_seq2seq.data.toy import write_splits

    write_splits(data, sizes={"train": 300, "validation": 50, "test": 60})
    result = subprocess.run(
        [sys.executable, "scripts/bench_accuracy.py", "--seeds", "1", "--budget", "00:00:00:05",
         "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "out.json"),
         "--config", f"tiny:+experiment=smoke {data_args}",
         "--config", f"hand:reference {data}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((tmp_path / "out.json").read_text())["results"]
    assert len(results["tiny"]["runs"]) == len(results["hand"]["runs"]) == 1
    for run in results["tiny"]["runs"] + results["hand"]["runs"]:
        assert run["steps"] > 0 and run["tokens_per_s"] > 0 and 0 <= run["greedy"] <= 1
    assert all(0 <= run["beam5"] <= 1 for run in results["tiny"]["runs"])
    (tiny,) = results["tiny"]["runs"]  # the toy data's families, scored apart
    assert tiny["families"].keys() == {"arithmetic", "story", "compare", "count"}
    table = result.stdout.split("exact match, mean ± std over 1 seeds")[1]
    assert "tiny" in table and "hand" in table
    assert "tiny               by family (greedy): arithmetic " in table


@pytest.mark.parametrize("override, remedy", [
    ("seed=3", "--first-seed"), ("trainer.max_time=00:00:01:00", "--budget"),
    ("hydra.run.dir=elsewhere", "--out"), ("++trainer.enable_progress_bar=true", "always off")])
@pytest.mark.cli
def test_bench_accuracy_refuses_an_override_it_would_replace(tmp_path, override, remedy):
    """A key the benchmark sets on every run (seed, budget, run directory, progress bar) would
    be replaced without a word: refused, with the option that sets it instead."""
    result = subprocess.run(
        [sys.executable, "scripts/bench_accuracy.py", "--out", str(tmp_path / "runs"),
         "--json", str(tmp_path / "out.json"), "--config", f"mine:+experiment=arith_best {override}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"--config mine: {override!r}" in result.stderr and remedy in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()
