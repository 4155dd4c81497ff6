"""`make bench` runs end to end: rows through the real entry point beside the reference."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_trains_a_row_through_the_entry_point_beside_the_reference(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--datasets", "toy", "--rows", "reference,lstm",
         "--steps", "2", "--warmup", "1", "--no-decode", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert set(rows) == {"toy/reference", "toy/lstm"}
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and 0 <= row["decoder_padding"] < 1
    assert "toy/lstm" in result.stdout and "1.00x" in result.stdout  # the reference's own ratio
