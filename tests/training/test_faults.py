"""Numerical faults and bad options fail early and clearly, and never reach a checkpoint."""

import pytest
import torch

from qa_seq2seq.decoding.checkpoint import read_checkpoint
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
    # last.ckpt after every step: had the poisoned update reached the weights, the step-11 save
    # would hold NaN (the run stops at step 10 instead, so last.ckpt is step 10's).
    with pytest.raises(NonFiniteError, match="non-finite gradient norm nan at step 10, epoch 1"):
        train(smoke(tmp_path, data_dir, *POISON, "callbacks.last.every_n_train_steps=1"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last).raw["global_step"] == 10
    assert all_finite(last)


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
    ("model.net.bridge=stat", "model.net.bridge='stat' is not one of"),
    ("model/net/sharing=tied_output", "model.net.embedding_size"),
    ("data.on_bad_row=ignore", "data.on_bad_row='ignore'"),
    ("+model.net.cell.name=question_encoder", "model cell name='question_encoder'"),
])
def test_bad_options_fail_before_any_training_step(tmp_path, smoke_run, override, message):
    from hydra.errors import InstantiationException

    from qa_seq2seq.errors import user_error

    data_dir = smoke_run[0].parent / "data"
    with pytest.raises((ConfigError, InstantiationException)) as info:
        train(smoke(tmp_path, data_dir, *override.split()))
    assert message in str(user_error(info.value))
    assert not (tmp_path / "run" / "checkpoints").exists()


def fp16(cfg, init_scale: float):
    """``cfg`` trained in fp16 mixed precision on the CPU, with a GradScaler from ``init_scale``."""
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.trainer.precision = None
        cfg.trainer.plugins = [{
            "_target_": "lightning.pytorch.plugins.precision.MixedPrecision",
            "precision": "16-mixed", "device": "cpu",
            "scaler": {"_target_": "torch.amp.GradScaler", "device": "cpu",
                       "init_scale": init_scale}}]
    return cfg


def test_fp16_overflow_steps_are_left_to_the_loss_scaler_and_counted(tmp_path, smoke_run):
    # A scale of 2**26 overflows fp16 gradients: the scaler skips those steps and halves the
    # scale until they fit. That is not a non-finite error (nonfinite=error is the default).
    # (torch's CPU LSTM has no fp16 kernel; the custom cells run in fp16 everywhere.)
    data_dir = smoke_run[0].parent / "data"
    metrics = train(fp16(smoke(tmp_path, data_dir, "trainer.max_epochs=2",
                               "model/net/cell=peephole_lstm"), 2.0**26))
    overflows = metrics["train/amp_overflow_steps"]
    assert overflows >= 5
    assert metrics["global_step"] == 2 * 8  # every batch ran; the scaler skipped some updates
    assert all_finite(tmp_path / "run" / "checkpoints" / "last.ckpt")


def test_fp16_stops_when_the_loss_scale_collapses(tmp_path, smoke_run):
    data_dir = smoke_run[0].parent / "data"
    # Every gradient NaN from step 10 on, with a finite loss: the scale halves until it collapses.
    cfg = fp16(smoke(tmp_path, data_dir, *POISON, "model/net/cell=peephole_lstm"), 8.0)
    with pytest.raises(NonFiniteError, match=r"fp16 loss scale collapsed to 0.5 at step 13 "
                                             r"after 4 overflowing steps"):
        train(cfg)
