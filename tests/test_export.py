"""The weights-only export: a third of a training checkpoint, answers exactly as the run does."""

import json
import subprocess
import sys

import pytest
import torch

from qa_seq2seq.decoding.checkpoint import load_model
from qa_seq2seq.decoding.runs import resolve_checkpoint
from qa_seq2seq.evaluate import evaluate
from qa_seq2seq.export import main
from tests.conftest import compose_evaluate

QUESTIONS = b"What is 3 plus 4?\nWhere is Mary?\nWhich is larger, 31 or 13?\n"


def decode(checkpoint) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", "--checkpoint",
                           str(checkpoint), "--format", "jsonl", "--decode", "beam"],
                          input=QUESTIONS, capture_output=True, timeout=120)


@pytest.mark.cli
def test_export_is_small_and_answers_like_the_run(smoke_run, tmp_path, capsys):
    run_dir, _ = smoke_run
    out = tmp_path / "exported"
    main(["--checkpoint", str(run_dir), "--out", str(out)])
    assert "model.ckpt" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["model.ckpt", "model.json", "tokenizer.model"]
    exported, original = load_model(out), load_model(run_dir)
    weight_bytes = sum(p.numel() * p.element_size() for p in original.model.parameters())
    saved = resolve_checkpoint(run_dir).stat().st_size - (out / "model.ckpt").stat().st_size
    assert saved >= 1.9 * weight_bytes  # Adam's two moments per weight are gone
    for (name, a), b in zip(exported.model.state_dict().items(),
                            original.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert decode(out).stdout == decode(run_dir).stdout != b""

    described = json.loads((out / "model.json").read_text())
    assert described["net"] == original.checkpoint.payload["net"]
    assert described["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert described["vocab_size"] == original.tokenizer.vocab_size
    assert described["parameters"]["decoder.output.weight"] == \
        list(original.model.decoder.output.weight.shape)
    assert evaluate(compose_evaluate(out, "split=validation"))["exact_match"] == \
        evaluate(compose_evaluate(run_dir, "split=validation"))["exact_match"]


@pytest.mark.cli
def test_an_existing_folder_is_not_overwritten(smoke_run, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep me")
    result = subprocess.run([sys.executable, "-m", "qa_seq2seq.export", "--checkpoint",
                             str(smoke_run[0]), "--out", str(tmp_path / "taken")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "already exists and is not an empty folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "taken" / "notes.txt").read_text() == "keep me"


def test_an_export_cannot_be_resumed_and_says_why(smoke_run, tmp_path):
    """README: the export holds no optimizer state, so resume= refuses it by name."""
    import pytest

    from qa_seq2seq.errors import ConfigError
    from qa_seq2seq.train import train
    from tests.conftest import compose_train, toy_data_overrides

    main(["--checkpoint", str(smoke_run[0]), "--out", str(tmp_path / "exported")])
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(smoke_run[0].parent / "data"),
                         f"resume={tmp_path / 'exported'}"], tmp_path / "run")
    with pytest.raises(ConfigError, match="exported has no checkpoints/last.ckpt to resume from"):
        train(cfg)


def test_an_export_copies_only_the_stored_parts_it_checked(smoke_run, tmp_path):
    """A payload key no part of qa_seq2seq reads (so nothing checked it) is left behind."""
    ckpt = torch.load(resolve_checkpoint(smoke_run[0]), weights_only=True)
    ckpt["qa_seq2seq"]["notes"] = {"_target_": "os.system", "_args_": ["echo unchecked"]}
    source = tmp_path / "with_notes.ckpt"
    torch.save(ckpt, source)
    main(["--checkpoint", str(source), "--out", str(tmp_path / "out")])
    exported = torch.load(tmp_path / "out" / "model.ckpt", weights_only=True)["qa_seq2seq"]
    assert set(exported) == {"format", "net", "data", "decode", "tokenizer"}
    assert "unchecked" not in (tmp_path / "out" / "model.json").read_text()
