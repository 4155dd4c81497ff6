"""suggest: on each generated data set it names the preset that scores best there
(docs/accuracy.md), counts lengths in that preset's pieces, and raises a limit that would cut."""

import subprocess
import sys

import pytest

from qa_seq2seq.data import arith, characters, passages, toy
from qa_seq2seq.data.generated import write_jsonl
from qa_seq2seq.suggest import lengths, suggest

SIZES = {"train": 300, "validation": 20, "test": 20}
SETS = {  # data option -> its generator's rows, and the preset that scores best on them
    "toy": (lambda: toy.generate(0, SIZES), "toy_lstm"),
    "arith": (lambda: arith.generate(0, SIZES), "arith_best"),
    "arith_chains": (lambda: arith.generate(0, SIZES, terms=(2, 6), max_digits=4,
                                            decimals=False), "arith_chains"),
    "characters": (lambda: characters.generate(0, SIZES), "characters"),
    "passages": (lambda: passages.generate(0, SIZES), "passage_qa"),
    "relations": (lambda: passages.generate(0, SIZES, kinds=["relations"]), "passage_qa"),
}


def data_overrides(option, folder):
    return [f"data={option}", f"data.train_file={folder}/train.jsonl",
            f"data.validation_file={folder}/validation.jsonl", "data.test_file=null"]


@pytest.mark.parametrize("option", SETS)
def test_each_generated_set_gets_the_preset_that_scores_best_there(option, tmp_path):
    rows, best = SETS[option]
    for split, examples in rows().items():
        write_jsonl(tmp_path / f"{split}.jsonl", examples)
    overrides = data_overrides(option, tmp_path)
    report = suggest(overrides)
    assert f"{tmp_path}/train.jsonl: 300 training rows" in report
    assert f"preset: {best} (" in report
    command = report.splitlines()[-1].split()
    assert command[:4] == ["python", "-m", "qa_seq2seq.train", f"+experiment={best}"]
    assert command[4:4 + len(overrides)] == overrides


def test_a_limit_that_would_cut_is_reported_and_raised(tmp_path):
    long = " ".join(["word"] * 300)
    write_jsonl(tmp_path / "train.jsonl", [{"question": f"{long} {i}?", "answer": str(i)}
                                           for i in range(40)])
    report = suggest(["data=jsonl", f"data.train_file={tmp_path}/train.jsonl",
                      f"data.validation_file={tmp_path}/train.jsonl"])
    assert "100.0% (data.max_question_length=256)" in report
    raised = int(report.split("data.max_question_length=")[-1].split()[0])
    longest = int(next(line for line in report.splitlines()
                       if line.startswith("question pieces")).split()[5])
    assert raised >= longest > 256 and raised % 16 == 0
    assert "data.max_answer_length=" not in report.splitlines()[-1]  # short answers: kept


def test_lengths_give_percentiles_the_cut_share_and_a_limit_that_cuts_nothing():
    found = lengths(list(range(1, 101)), limit=90)
    assert found[:4] == (51, 91, 100, 100) and found.cut == pytest.approx(0.10)
    assert found.suggested() == 112
    outlier = lengths([5] * 199 + [1000], limit=64)
    assert outlier.cut == pytest.approx(0.005) and outlier.suggested() is None  # cut, reported
    assert lengths([5, 6], limit=64).suggested() is None


@pytest.mark.cli
def test_a_missing_file_is_one_message_and_exit_status_2(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = subprocess.run([sys.executable, "-m", "qa_seq2seq.suggest", "data=jsonl",
                             f"data.train_file={missing}", f"data.validation_file={missing}"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: data file(s) not found" in result.stderr and str(missing) in result.stderr


def test_a_streaming_source_is_read_from_its_first_rows(tmp_path):
    rows, _ = SETS["characters"]
    for split, examples in rows().items():
        write_jsonl(tmp_path / f"{split}.jsonl", examples)
    report = suggest([*data_overrides("characters", tmp_path), "data.streaming=true"])
    assert "300 training rows (the first, streaming)" in report
    assert "preset: characters (" in report
