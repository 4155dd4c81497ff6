"""`make bench` runs end to end: rows through the real entry point beside the reference."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_trains_a_row_through_the_entry_point_beside_the_reference(tmp_path):
    """A row that fails (gru has no forget_bias) is reported after the others' table."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--datasets", "toy", "--rows", "reference,lstm,gru",
         "--steps", "2", "--warmup", "1", "--no-decode", "--json", str(out),
         "--overrides", "model.net.cell.forget_bias=1.0"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Could not override 'model.net.cell.forget_bias'" in result.stderr
    assert result.stderr.rstrip().endswith("rows that failed (their errors are above): toy/gru")
    rows = json.loads(out.read_text())
    assert set(rows) == {"toy/reference", "toy/lstm"}
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and 0 <= row["decoder_padding"] < 1
    assert "toy/lstm" in result.stdout and "1.00x" in result.stdout  # the reference's own ratio
