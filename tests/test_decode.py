"""The decoding CLI: its parsing, the installed script, the newest-run default, the prompt
(more end-to-end runs are in test_train.py and test_answerer.py)."""

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa_seq2seq.decode import parse_args
from qa_seq2seq.model_args import option_value


def test_option_values_are_read_as_hydra_reads_overrides():
    assert [option_value(v) for v in ("5", "0.6", "1e-3", "gnmt", "null", "none", "true", "False")] \
        == [5, 0.6, 0.001, "gnmt", None, None, True, False]


def test_search_options_mix_with_flags_in_any_order():
    args = parse_args(["beam_size=4", "--decode", "beam", "--format", "jsonl", "n_best=2"])
    assert args.decode == "beam" and args.options == {"beam_size": 4, "n_best": 2}
    with pytest.raises(SystemExit):
        parse_args(["beam size=4"])


def newest_run_layout(smoke_run, root: Path) -> Path:
    """A copy of the smoke run as outputs/<run_name>/<time>/ under ``root``."""
    run = root / "outputs" / "smoke" / "2026-11-29_12-00-00"
    shutil.copytree(smoke_run[0], run, ignore=shutil.ignore_patterns("eval-*"))
    return run


@pytest.mark.cli
def test_installed_script_answers_from_the_newest_run_with_a_batch_size(smoke_run, tmp_path):
    """README: `qa-seq2seq-decode` with no --checkpoint (the newest run under outputs/) and
    `--batch-size`: the same answers at batch 1 as at the default batch."""
    newest_run_layout(smoke_run, tmp_path)
    script = Path(sys.executable).parent / "qa-seq2seq-decode"
    questions = b"What is 3 plus 4?\nWhere is Mary?\nWhich is larger, 31 or 13?\n"
    runs = [subprocess.run([str(script), *args], input=questions, cwd=tmp_path,
                           capture_output=True, timeout=120) for args in ([], ["--batch-size", "1"])]
    for run in runs:
        assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout.splitlines()) == 3
    expected = subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", "--checkpoint",
                               str(smoke_run[0])], input=questions, capture_output=True, timeout=120)
    assert runs[0].stdout == expected.stdout


@pytest.mark.cli
def test_the_interactive_prompt_answers_each_question_as_it_is_typed(smoke_run, tmp_path):
    """A terminal on stdin: a prompt on stderr, each answer printed (flushed) before the next
    question is typed, Ctrl-D ends."""
    newest_run_layout(smoke_run, tmp_path)
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "qa_seq2seq.decode"], stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    os.close(slave)
    try:
        os.write(master, b"What is 3 plus 4?\n")
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no answer before the next question"
        first = proc.stdout.readline()
        os.write(master, b"Where is Mary?\n\x04")  # Ctrl-D: end of input
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
        proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert first.endswith(b"\n") and len(out.splitlines()) == 1  # one answer per question
    assert err.decode().count("question> ") == 3 and "Ctrl-D to quit" in err.decode()
