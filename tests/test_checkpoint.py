"""Loading is safe: no code from a checkpoint or stored config runs; errors say what is wrong."""

import os

import pytest
import torch

from qa_seq2seq.checkpoint import (
    CheckpointError,
    build_model,
    check_targets,
    load_model,
    read_checkpoint,
    resolve_checkpoint,
)
from tests.conftest import compose_evaluate


def tampered(run_dir, path, edit):
    """A copy of the run's checkpoint with ``edit(payload)`` applied to its qa_seq2seq entry."""
    ckpt = torch.load(resolve_checkpoint(run_dir), weights_only=True)
    edit(ckpt["qa_seq2seq"])
    torch.save(ckpt, path)
    return path


class Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path, smoke_run):
    run_dir, _ = smoke_run
    marker = tmp_path / "pwned"
    path = tampered(run_dir, tmp_path / "evil.ckpt",
                    lambda payload: payload.update(extra=Exploit(marker)))
    with pytest.raises(CheckpointError, match="refused to load"):
        read_checkpoint(path)
    assert not marker.exists()


def test_a_stored_target_outside_the_allow_list_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    config = {"_target_": "qa_seq2seq.model.Seq2Seq", "vocab_size": 10,
              "cell": {"_target_": "os.system", "_args_": [f"touch {marker}"]}}
    with pytest.raises(CheckpointError, match="refused _target_ 'os.system'"):
        build_model(config, "evil.ckpt [model config]")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="builtins.exec"):
        check_targets([{"a": {"_target_": "builtins.exec"}}], ("qa_seq2seq.",), "x")


def test_other_files_get_a_one_line_explanation(tmp_path, smoke_run):
    plain = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not a qa_seq2seq checkpoint"):
        read_checkpoint(plain)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.ckpt")
    old = tampered(smoke_run[0], tmp_path / "old.ckpt", lambda payload: payload.update(format=0))
    with pytest.raises(CheckpointError, match="format 0"):
        read_checkpoint(old)


def test_a_format_1_checkpoint_is_read_as_format_2(tmp_path, smoke_run):
    """Format 1 kept the network config under "model", with init/init_from/freeze beside it."""
    def downgrade(payload):
        payload["model"] = {**payload.pop("net"), "init": None, "init_from": None, "freeze": []}
        payload["format"] = 1

    old = load_model(tampered(smoke_run[0], tmp_path / "v1.ckpt", downgrade))
    new = load_model(smoke_run[0])
    assert old.checkpoint.payload["net"] == new.checkpoint.payload["net"]
    for (name, a), b in zip(old.model.state_dict().items(), new.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_weights_that_do_not_fit_the_config_are_reported(tmp_path, smoke_run):
    path = tampered(smoke_run[0], tmp_path / "mismatch.ckpt",
                    lambda payload: payload["net"].update(hidden_size=48))
    with pytest.raises(CheckpointError, match="do not fit the model.*size mismatch"):
        load_model(path)


def test_a_tokenizer_that_does_not_match_the_model_is_refused(tmp_path, smoke_run):
    from qa_seq2seq.tokenizer import Tokenizer

    other = Tokenizer.train(["a completely different corpus"] * 50, vocab_size=30)
    path = tampered(smoke_run[0], tmp_path / "mixed.ckpt",
                    lambda payload: payload.update(tokenizer=other.model_proto))
    with pytest.raises(CheckpointError, match="tokenizer has .* pieces but the model expects"):
        load_model(path)


def test_evaluate_and_inspect_refuse_stored_targets_outside_the_allow_list(tmp_path, smoke_run):
    import shutil

    from omegaconf import OmegaConf

    from qa_seq2seq.evaluate import evaluate
    from qa_seq2seq.inspect import from_checkpoint

    run_dir, _ = smoke_run
    marker = tmp_path / "pwned"
    hostile = {"_target_": "os.system", "_args_": [f"touch {marker}"]}
    # evaluate builds the data module from the checkpoint's data config.
    path = tampered(run_dir, tmp_path / "evil.ckpt",
                    lambda payload: payload["data"].update(generate=hostile))
    with pytest.raises(CheckpointError, match="refused _target_ 'os.system'"):
        evaluate(compose_evaluate(path))
    # inspect reads the initializer from the run's stored .hydra/config.yaml.
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(resolve_checkpoint(run_dir), run / "checkpoints" / "best.ckpt")
    (run / ".hydra").mkdir()
    OmegaConf.save({"model": {"init": hostile}}, run / ".hydra" / "config.yaml")
    with pytest.raises(CheckpointError, match="refused _target_ 'os.system'"):
        from_checkpoint(str(run))
    assert not marker.exists()
