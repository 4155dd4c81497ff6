"""The Python API: the same answers as the decoding CLI and the search, checked options."""

import json
import subprocess
import sys

import pytest

from qa_seq2seq import Answerer
from qa_seq2seq.decoding.answerer_base import QuestionError
from qa_seq2seq.decoding.search import beam_search
from qa_seq2seq.errors import ConfigError

QUESTIONS = ["What is 3 plus 4?", "Which is larger, 31 or 13?", "Where is Mary?"]


@pytest.mark.cli
def test_answers_what_the_cli_answers(smoke_run):
    run_dir, _ = smoke_run
    qa = Answerer.from_checkpoint(run_dir, decode="beam", beam_size=3, n_best=2)
    answers = qa.answer([QUESTIONS[0], {"question": QUESTIONS[1]}, QUESTIONS[2]])
    cli = subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", "--checkpoint", str(run_dir),
                          "--decode", "beam", "beam_size=3", "n_best=2", "--format", "jsonl"],
                         input="\n".join(QUESTIONS).encode(), capture_output=True, timeout=120)
    assert cli.returncode == 0, cli.stderr.decode()
    rows = [json.loads(line) for line in cli.stdout.decode().splitlines()]
    assert [a.text for a in answers] == [r["answer"] for r in rows]
    assert [a.score for a in answers] == pytest.approx([r["score"] for r in rows])
    for a, r in zip(answers, rows):
        assert (a.text, a.score) == (a.n_best[0].text, a.n_best[0].score)
        assert [h.text for h in a.n_best] == [h["answer"] for h in r["n_best"]]


def test_scores_are_the_searchs_own(smoke_run):
    run_dir, _ = smoke_run
    qa = Answerer.from_checkpoint(run_dir, decode="beam", beam_size=4)
    ids = qa.source(QUESTIONS[1])[1]
    import torch

    direct = beam_search(qa.model, torch.tensor([ids]), torch.tensor([len(ids)]), beam_size=4)
    assert qa.answer([QUESTIONS[1]])[0].score == pytest.approx(direct[0][0].score)


def test_unknown_search_or_option_is_refused_by_name(smoke_run):
    run_dir, _ = smoke_run
    with pytest.raises(ConfigError, match="beam_szie: not an option of decode=beam; its options "
                                          "are beam_size, n_best"):
        Answerer.from_checkpoint(run_dir, decode="beam", beam_szie=5)
    with pytest.raises(ConfigError, match="decode='bean': choose from greedy, beam, sample"):
        Answerer.from_checkpoint(run_dir, decode="bean")
    for option, message in ((dict(max_length="abc"), "max_length='abc': must be an integer"),
                            (dict(max_length=None), "max_length=None: must be an integer"),
                            (dict(max_length_ratio="x"), "max_length_ratio='x': must be a number or null")):
        with pytest.raises(ConfigError, match=message):
            Answerer.from_checkpoint(run_dir, decode="greedy", **option)
    assert Answerer.from_checkpoint(run_dir, decode="beam", alpha=1, max_length_ratio=2).options \
        == {"alpha": 1, "max_length_ratio": 2}  # an int where a number is asked


def test_a_question_it_cannot_read_names_its_position(smoke_run):
    run_dir, _ = smoke_run
    qa = Answerer.from_checkpoint(run_dir)
    with pytest.raises(QuestionError, match="question 1: empty question"):
        qa.answer(["What is 3 plus 4?", "  "])
    with pytest.raises(QuestionError, match="question 0: field 'question' is missing"):
        qa.answer([{"query": "What is 3 plus 4?"}])
    with pytest.raises(QuestionError, match="question 0: a int, not a string or a dict"):
        qa.answer([42])
    with pytest.raises(QuestionError, match=r"question 1: the question is not valid Unicode \(a "
                                            r"lone surrogate at character 3\)"):
        qa.answer(["What is 3 plus 4?", "Is \ud800 here?"])
    for one in ("What is 3 plus 4?", {"question": "What is 3 plus 4?"}, b"What?"):
        with pytest.raises(QuestionError, match=r"^answer\(\) takes a list of questions, not one "
                                                r"(str|dict|bytes): pass \[question\]$"):
            qa.answer(one)


def test_the_checkpoints_search_is_the_default_and_options_override_it(smoke_run):
    from qa_seq2seq.decoding.checkpoint import load_model

    loaded = load_model(smoke_run[0])
    loaded.checkpoint.payload["decode"] = {"_target_": "qa_seq2seq.decoding.search.beam_search",
                                           "_partial_": True, "beam_size": 4, "max_length": 20}
    stored = Answerer(loaded)
    assert (stored.decode, stored.options) == ("beam", {"beam_size": 4, "max_length": 20})
    assert Answerer(loaded, beam_size=2).options == {"beam_size": 2, "max_length": 20}
    assert Answerer(loaded, "greedy").options == {}  # another search: its own defaults
    ids = stored.source(QUESTIONS[0])[1]
    import torch

    direct = beam_search(stored.model, torch.tensor([ids]), torch.tensor([len(ids)]), beam_size=4,
                         max_length=20)
    assert stored.answer([QUESTIONS[0]])[0].score == pytest.approx(direct[0][0].score)
    loaded.checkpoint.payload["decode"] = {"_target_": "os.system"}  # looked up, never imported
    with pytest.raises(ConfigError, match="names 'os.system', not one of greedy, beam, sample"):
        Answerer(loaded)


def test_stored_decode_targets_name_the_search_functions():
    """A checkpoint's decode config is matched by name (never imported): the names must stay
    those of the functions."""
    import importlib

    from qa_seq2seq.decoding.answerer import SEARCHES
    from qa_seq2seq.decoding.search_options import SEARCH_TARGETS

    assert SEARCH_TARGETS.keys() == SEARCHES.keys()
    for name, target in SEARCH_TARGETS.items():
        module, function = target.rsplit(".", 1)
        assert getattr(importlib.import_module(module), function) is SEARCHES[name]


@pytest.mark.parametrize("name", ["greedy", "beam", "sample"])
def test_a_decode_config_stored_before_the_layers_names_the_same_search(name):
    from qa_seq2seq.decoding.search_options import decode_choice

    stored = {"_target_": f"qa_seq2seq.search.{name if name == 'sample' else name + '_search'}",
              "_partial_": True, "max_length": 9}
    assert decode_choice(stored, "old.ckpt") == (name, {"max_length": 9})
    with pytest.raises(ConfigError, match="old.ckpt names 'qa_seq2seq.search.nothing'"):
        decode_choice({**stored, "_target_": "qa_seq2seq.search.nothing"}, "old.ckpt")


def test_with_search_shares_the_model_and_checks_the_options(smoke_run):
    qa = Answerer.from_checkpoint(smoke_run[0])
    beam = qa.with_search("beam", beam_size=4, n_best=2)
    assert beam.model is qa.model and (beam.decode, qa.decode) == ("beam", "greedy")
    assert len(beam.answer(QUESTIONS)[0].n_best) <= 2
    with pytest.raises(ConfigError, match="decode.beam_size must be >= 1"):
        qa.with_search("beam", beam_size=0)
