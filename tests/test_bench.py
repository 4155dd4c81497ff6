"""`make bench` runs end to end: rows through the real entry point beside the reference."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.train
@pytest.mark.cli
def test_bench_trains_a_row_through_the_entry_point_beside_the_reference(tmp_path):
    """A row that fails (gru has no forget_bias) is reported after the others' table; an
    attention row trains with attention and is set against the plain lstm row."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--datasets", "toy",
         "--rows", "reference,lstm,gru,lstm+dot+feed", "--steps", "2", "--warmup", "1",
         "--no-decode", "--json", str(out),
         "--overrides", "model.net.cell.forget_bias=1.0"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "unknown key model.net.cell.forget_bias" in result.stderr
    assert result.stderr.rstrip().endswith("rows that failed (their errors are above): toy/gru")
    rows = json.loads(out.read_text())
    assert set(rows) == {"toy/reference", "toy/lstm", "toy/lstm+dot+feed"}
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and 0 <= row["decoder_padding"] < 1
    assert "toy/lstm" in result.stdout and "1.00x" in result.stdout  # the reference's own ratio
    assert rows["toy/lstm"]["first_step_s"] > 0 and "first_step_s" not in rows["toy/reference"]
    assert (rows["toy/lstm"]["attention"], rows["toy/lstm"]["input_feeding"]) == (None, False)
    assert (rows["toy/lstm+dot+feed"]["attention"], rows["toy/lstm+dot+feed"]["input_feeding"]) == (
        "dot", True)
    ratio = rows["toy/lstm+dot+feed"]["tokens_per_s"] / rows["toy/lstm"]["tokens_per_s"]
    assert f"toy/lstm+dot+feed: {ratio:.2f}x the tokens/s of the plain lstm row" in result.stdout


@pytest.mark.train
@pytest.mark.cli
def test_bench_decode_times_each_batch_size_beside_the_reference_loop(tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"question": f"What is {i} plus {i + 1}?"}) + "\n"
                                 for i in range(12)))
    result = subprocess.run(
        [sys.executable, "scripts/bench_decode.py", "--untrained", "--repeats", "1",
         "--max-length", "3", "--batch-sizes", "8,2", "--questions", str(questions),
         "--profile", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Decoding 12 questions on cpu (untrained 2x256 LSTM" in out
    header, _, greedy, beam, reference = out.split("questions/s\n")[1].splitlines()[:5]
    assert header.split() == ["search", "batch", "2", "batch", "8"]  # sorted
    assert greedy.startswith("greedy") and beam.startswith("beam5") and len(greedy.split()) == 3
    # The reference runs at the largest size, in its column; an untrained plain LSTM model is
    # exactly what the hand-written loop computes.
    assert reference[10:22].strip() == ""  # nothing under "batch 2"
    assert reference[22:len(header)].strip().replace(",", "").isdigit()  # questions/s at 8
    assert "same answers for 100.0%" in reference
    assert "greedy batch 8 vs batch 2:" in out
    # --profile: torch.profiler's table of each pass, at the reference's batch size.
    for name in ("greedy", "beam5", "reference"):
        table = out.split(f"\n{name}, batch 8: the 4 operators with the most self_cpu_time_total\n")[1]
        assert "Self CPU %" in table.splitlines()[1] and "aten::" in table


@pytest.mark.train
@pytest.mark.cli
def test_bench_long_passages_beside_a_reference_of_the_same_architecture(tmp_path):
    """passages-N: sources of exactly N tokens, the reference the preset's architecture."""
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--datasets", "passages-256",
         "--rows", "reference,lstm", "--steps", "6", "--warmup", "1", "--no-decode",
         "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert set(rows) == {"passages-256/reference", "passages-256/lstm"}
    for row in rows.values():  # every source cut to 256 tokens: (next to) no encoder padding
        assert row["tokens_per_s"] > 0 and row["encoder_padding"] < 0.01
