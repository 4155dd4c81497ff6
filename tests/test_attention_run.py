"""End to end with attention, input feeding, copy attention, thinking steps, place-value
embeddings, a reversed source and a reversed target: TensorBoard maps, and evaluation and the
CLI reading questions and writing answers exactly as training did."""

import json
import subprocess
import sys

import pytest

from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.decoding.checkpoint import read_checkpoint
from qa_seq2seq.evaluate import evaluate
from qa_seq2seq.network.places import DIGIT
from tests.conftest import compose_evaluate, compose_train, toy_data_overrides

pytestmark = pytest.mark.xdist_group(__name__)  # one xdist worker: module fixtures built once


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory):
    from qa_seq2seq.train import train

    root = tmp_path_factory.mktemp("attention")
    cfg = compose_train(["+experiment=smoke", "model/net/attention=general",
                         "model.net.input_feeding=true", "model.net.copy=true",
                         "model.net.thinking_steps=2", "model.net.number_places=true",
                         "data.reverse_source=true",
                         "data.reverse_target=true", "trainer.max_epochs=2",
                         *toy_data_overrides(root / "data")], root / "run")
    train(cfg)
    return root / "run"


def test_tensorboard_shows_attention_maps(attention_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(attention_run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {f"val/attention/{i}" for i in range(4)} <= set(events.Tags()["images"])
    # Validation samples show questions and gold answers as written, not in the model's order.
    table = events.Tensors("val/samples/text_summary")[-1].tensor_proto.string_val[0].decode()
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    data = attention_run.parent / "data" / "validation.jsonl"
    written = {(r["question"], r["answer"]) for r in map(json.loads, data.open())}
    assert rows and all((q.lstrip("| "), gold) in written for q, _, gold, _ in rows)


@pytest.mark.cli
def test_the_checkpoint_keeps_the_reading_order_and_the_cli_agrees_with_evaluate(attention_run):
    ckpt = read_checkpoint(attention_run)
    assert ckpt.payload["data"]["reverse_source"] is True
    assert ckpt.payload["net"]["thinking_steps"] == 2
    # Which pieces are digits travels in the checkpoint, with the reading order.
    tokenizer = Tokenizer.load(attention_run / "tokenizer.model")
    digits = [tokenizer.id_to_piece([int(i)])[0] for i in
              ckpt.state_dict["encoder.places.kinds"].eq(DIGIT).nonzero()]
    assert sorted(digits) == list("0123456789")
    assert bool(ckpt.state_dict["encoder.places.reversed"])
    evaluate(compose_evaluate(attention_run, "split=validation"))
    rows = [json.loads(line) for line in (attention_run / "checkpoints" / "eval-validation-greedy"
                                          / "predictions.jsonl").read_text().splitlines()][:20]
    questions = "".join(json.dumps({"question": r["question"]}) + "\n" for r in rows)
    result = subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", "--checkpoint",
                             str(attention_run), "--format", "jsonl", "--attention"],
                            input=questions.encode(), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    answers = [json.loads(line) for line in result.stdout.decode().splitlines()]
    for row, answered in zip(rows, answers):
        # The score depends on the order the encoder reads: a CLI that did not reverse differs.
        assert answered["answer"] == row["prediction"]
        assert answered["score"] == pytest.approx(row["score"], abs=1e-4)
        attention = answered["attention"]
        assert len(attention["weights"]) == len(attention["answer"])
        for weights in attention["weights"]:
            assert len(weights) == len(attention["source"])
            assert sum(weights) == pytest.approx(1.0, abs=1e-3)
    # The pieces are listed as the encoder read them and the decoder wrote them: last first.
    first = answers[0]["attention"]
    assert "".join(first["source"][::-1]).replace("▁", " ").strip() == rows[0]["question"]
    assert "".join(first["answer"][:-1][::-1]).replace("▁", " ").strip() == answers[0]["answer"]


@pytest.mark.cli
def test_cli_attention_needs_jsonl_and_a_model_with_attention(smoke_run):
    run_dir, _ = smoke_run
    run = lambda *args: subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", *args],  # noqa: E731
                                       input=b"What is 3 plus 4?\n", capture_output=True,
                                       timeout=120)
    result = run("--checkpoint", str(run_dir), "--attention")
    assert result.returncode == 2 and b"--attention needs --format jsonl" in result.stderr
    result = run("--checkpoint", str(run_dir), "--attention", "--format", "jsonl")
    assert result.returncode == 2 and b"has no attention" in result.stderr
    assert b"Traceback" not in result.stderr
