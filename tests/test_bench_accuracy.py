"""The accuracy benchmark runs end to end: real entry points, the reference row, the summary."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_accuracy_trains_evaluates_and_summarises(tmp_path):
    data = tmp_path / "toy"
    data_args = " ".join([f"data.{s}_file={data}/{s}.jsonl" for s in ("train", "validation", "test")]
                         + [f"data.generate.out_dir={data}"])
    from qa_seq2seq.toy_data import write_splits

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
    table = result.stdout.split("exact match, mean ± std over 1 seeds")[1]
    assert "tiny" in table and "hand" in table


def test_bench_accuracy_refuses_an_override_it_would_replace(tmp_path):
    """A seed in a configuration would be replaced by --seeds: refused, not ignored."""
    result = subprocess.run(
        [sys.executable, "scripts/bench_accuracy.py", "--out", str(tmp_path / "runs"),
         "--json", str(tmp_path / "out.json"), "--config", "mine:+experiment=arith_best seed=3"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--config mine: 'seed=3'" in result.stderr and "--first-seed" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "runs").exists()
