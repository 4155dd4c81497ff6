"""Numerical faults and bad options fail early and clearly, and never reach a checkpoint."""

import pytest
import torch

from qa_seq2seq.checkpoint import read_checkpoint
from qa_seq2seq.errors import ConfigError, NonFiniteError
from qa_seq2seq.train import train
from tests.conftest import compose_train, toy_data_overrides

POISON = ["+callbacks.poison._target_=tests.helpers.PoisonGradients", "+callbacks.poison.step=10",
          "trainer.max_epochs=2"]


def smoke(tmp_path, data_dir, *overrides):
    return compose_train(["+experiment=smoke", *toy_data_overrides(data_dir), *overrides],
                         tmp_path / "run")


def all_finite(path):
    return all(torch.isfinite(t).all() for t in read_checkpoint(path).state_dict.values())


def test_nonfinite_gradient_stops_naming_the_step_and_keeps_checkpoints_finite(
        tmp_path, smoke_run):
    data_dir = smoke_run[0].parent / "data"
    with pytest.raises(NonFiniteError, match="non-finite gradient norm nan at step 10, epoch 1"):
        train(smoke(tmp_path, data_dir, *POISON))
    assert all_finite(tmp_path / "run" / "checkpoints" / "best.ckpt")  # from epoch 0


def test_nonfinite_loss_is_caught_by_the_same_check_and_names_the_rows(tmp_path, smoke_run):
    data_dir = smoke_run[0].parent / "data"
    poison = ["+callbacks.poison._target_=tests.helpers.PoisonLoss", "+callbacks.poison.step=3"]
    with pytest.raises(NonFiniteError, match=r"at step 3, epoch 0, batch 3 \(rows \[\d+"):
        train(smoke(tmp_path, data_dir, *poison))


def test_nonfinite_updates_can_be_skipped(tmp_path, smoke_run, caplog):
    data_dir = smoke_run[0].parent / "data"
    metrics = train(smoke(tmp_path, data_dir, *POISON, "nonfinite=skip"))
    assert metrics["global_step"] == 16
    assert "update skipped (6 so far)" in caplog.text
    assert all_finite(tmp_path / "run" / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize("override,message", [
    ("decode=beam decode.beam_size=0", "decode.beam_size must be >= 1"),
    ("decode=beam decode.n_best=9", "decode.n_best must be between 1 and beam_size=5"),
    ("model.bridge=stat", "model.bridge='stat' is not one of"),
    ("model/sharing=tied_output", "model.embedding_size"),
    ("data.on_bad_row=ignore", "data.on_bad_row='ignore'"),
])
def test_bad_options_fail_before_any_training_step(tmp_path, smoke_run, override, message):
    from hydra.errors import InstantiationException

    from qa_seq2seq.train import user_error

    data_dir = smoke_run[0].parent / "data"
    with pytest.raises((ConfigError, InstantiationException)) as info:
        train(smoke(tmp_path, data_dir, *override.split()))
    assert message in str(user_error(info.value))
    assert not (tmp_path / "run" / "checkpoints").exists()
