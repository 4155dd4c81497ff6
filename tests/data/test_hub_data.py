"""data=squad / data=hub through the real datasets.load_dataset code, offline, on a local folder
laid out like a hub dataset with SQuAD's schema (nested answers, question + context), trained
with the passage preset (+experiment=passage_qa)."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.data.toy import NAMES, PLACES
from qa_seq2seq.decoding.checkpoint import read_checkpoint
from qa_seq2seq.evaluate import evaluate
from tests.conftest import compose_evaluate

ROOT = Path(__file__).resolve().parents[2]


def squad_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        people, places = rng.sample(NAMES, 2), rng.sample(PLACES, 2)
        asked = rng.randrange(2)
        context = " ".join(f"{p} went to the {q}." for p, q in zip(people, places))
        context += " It was a long day, and nobody said much about it." * rng.randint(0, 3)
        rows.append({"id": str(i), "title": "toy", "context": context,
                     "question": f"Where is {people[asked]}?",
                     "answers": {"text": [places[asked]],
                                 "answer_start": [context.index(places[asked])]}})
    return rows


# The passage preset (copy attention, the match feature, a bidirectional encoder), at a size that
# trains in seconds.
SMALL = ["model.net.embedding_size=16", "model.net.hidden_size=32", "data.batch_size=32",
         "trainer.max_epochs=1", "trainer.val_check_interval=1.0", "trainer.limit_val_batches=1",
         "trainer.enable_progress_bar=false", "scheduler.warmup_steps=4"]

# one xdist worker: module fixtures built once; every test runs the commands in a subprocess
pytestmark = [pytest.mark.xdist_group(__name__), pytest.mark.cli]


@pytest.fixture(scope="module")
def squad_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad")
    folder = root / "my_squad"
    folder.mkdir()
    datasets.Dataset.from_list(squad_rows(400, 0)).to_parquet(str(folder / "train.parquet"))
    datasets.Dataset.from_list(squad_rows(60, 1)).to_parquet(str(folder / "validation.parquet"))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(root / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "qa_seq2seq.train", "+experiment=passage_qa", "data=squad",
         f"data.path={folder}", "data.tokenizer.vocab_size=100", "data.max_question_length=24",
         "run_name=squad", *SMALL],
        cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (root / "outputs" / "squad").iterdir()
    return root, run, result.stdout + result.stderr


def test_trains_offline_from_a_hub_layout_folder_with_templates_and_nested_answers(squad_run):
    _, run, output = squad_run
    assert "train[:95%]" in output  # the split slicing of data=squad ...
    assert "on 380 training rows" in output  # ... reached load_dataset: 95% of 400 rows
    assert "over the length limits (24, 32) were truncated" in output  # long contexts


def test_evaluates_with_the_same_source_building(squad_run):
    _, run, _ = squad_run
    metrics = evaluate(compose_evaluate(run))
    assert metrics["count"] == 60
    rows = [json.loads(line) for line in
            (run / "checkpoints" / "eval-test-greedy" / "predictions.jsonl").open()]
    assert rows[0]["question"].startswith("Where is ")  # the preset's "{question} <sep> {context}"
    assert " <sep> " in rows[0]["question"]
    assert rows[0]["gold"] in PLACES


def test_decode_cli_builds_the_source_from_json_fields(squad_run):
    root, run, _ = squad_run
    lines = (json.dumps({"question": "Where is Mary?",
                         "context": "Mary went to the park. John went to the office." * 5})
             + "\nWhere is Mary?\n")
    result = subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", "--checkpoint", str(run),
                             "--format", "jsonl"], input=lines, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(x) for x in result.stdout.splitlines())
    assert first["question"].startswith("Where is Mary? <sep> Mary went")
    assert "answer" in first
    assert "reads the fields ['question', 'context']" in second["error"]


def test_the_checkpoint_carries_the_separator_the_tokenizer_keeps_whole(squad_run):
    _, run, _ = squad_run
    tokenizer = Tokenizer.load(run / "tokenizer.model")
    assert "<sep>" in tokenizer.pieces("Where is Mary? <sep> Mary went")
    separator = int(read_checkpoint(run).state_dict["encoder.match.separator_id"])
    assert tokenizer.id_to_piece([separator]) == ["<sep>"]
