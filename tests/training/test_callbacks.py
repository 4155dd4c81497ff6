"""The callbacks the training config names (training/callbacks.py), in process: how a signal
stops a run, and how a moved run's checkpoint state follows it."""

import os
import signal
from pathlib import Path

import pytest
from lightning.pytorch.callbacks import ModelCheckpoint

from qa_seq2seq.training.callbacks import GracefulStop, RunCheckpoint, Stopped


class FakeTrainer:
    global_step = 7

    def __init__(self):
        self.saved = []

    def save_checkpoint(self, path, weights_only):
        self.saved.append((path, weights_only))


def test_a_signal_stops_after_the_step_with_a_full_checkpoint_and_a_second_stops_at_once(
        tmp_path, caplog):
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop = GracefulStop(str(tmp_path / "last.ckpt"))
    trainer = FakeTrainer()
    stop.on_train_start(trainer, None)
    try:
        stop.on_train_batch_end(trainer)  # no signal yet: nothing happens
        assert trainer.saved == []
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.received == signal.SIGTERM
        assert (f"received SIGTERM: stopping after this step and saving {tmp_path / 'last.ckpt'} "
                "(again to stop at once)") in caplog.messages
        with pytest.raises(Stopped) as error:
            stop.on_train_batch_end(trainer)
        assert trainer.saved == [(tmp_path / "last.ckpt", False)]  # with optimizer state
        assert (error.value.signum, error.value.step) == (signal.SIGTERM, 7)
        assert str(error.value) == (f"stopped by SIGTERM at step 7: saved {tmp_path / 'last.ckpt'}"
                                    "; continue with resume=auto (or resume=<run directory>)")
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second signal
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == previous
    finally:
        stop.on_exception(trainer, None, RuntimeError())
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == previous


def test_handlers_are_restored_when_training_ends_or_fails():
    previous = signal.getsignal(signal.SIGINT)
    for end in (lambda stop: stop.on_train_end(None, None),
                lambda stop: stop.on_exception(None, None, RuntimeError())):
        stop = GracefulStop("last.ckpt")
        stop.on_train_start(None, None)
        assert signal.getsignal(signal.SIGINT) == stop._handle
        end(stop)
        assert signal.getsignal(signal.SIGINT) == previous



def checkpoint_state(dirpath: Path) -> dict:
    return {"monitor": "val/exact_match", "best_model_score": 0.75, "dirpath": str(dirpath),
            "best_model_path": str(dirpath / "best.ckpt"),
            "kth_best_model_path": str(dirpath / "step=20.ckpt"),
            "last_model_path": str(dirpath / "last.ckpt"), "kth_value": 0.5,
            "best_k_models": {str(dirpath / "step=20.ckpt"): 0.5, "/elsewhere/x.ckpt": 0.25}}


def test_a_moved_run_keeps_its_best_score_and_paths_in_the_new_directory(tmp_path, caplog):
    old, new = tmp_path / "old/checkpoints", tmp_path / "new/checkpoints"
    callback = RunCheckpoint(dirpath=new, monitor="val/exact_match", mode="max")
    with caplog.at_level("INFO", logger="qa_seq2seq.training.callbacks"):
        callback.load_state_dict(checkpoint_state(old))
    assert [r.getMessage() for r in caplog.records] == [
        f"the run moved from {old}: its checkpoint state follows it to {new}"]
    assert float(callback.best_model_score) == 0.75
    assert callback.dirpath == str(new)
    assert (callback.best_model_path, callback.kth_best_model_path, callback.last_model_path) == (
        str(new / "best.ckpt"), str(new / "step=20.ckpt"), str(new / "last.ckpt"))
    assert callback.best_k_models == {str(new / "step=20.ckpt"): 0.5, "/elsewhere/x.ckpt": 0.25}


def test_a_moved_run_without_best_k_models_keeps_its_best_path(tmp_path):
    old, new = tmp_path / "old/checkpoints", tmp_path / "new/checkpoints"
    state = {k: v for k, v in checkpoint_state(old).items() if k != "best_k_models"}
    callback = RunCheckpoint(dirpath=new, monitor="val/exact_match", mode="max")
    callback.load_state_dict(state)
    assert (callback.best_model_path, callback.best_k_models) == (str(new / "best.ckpt"), {})


def test_a_state_without_a_directory_is_lightnings_to_read(tmp_path, caplog):
    callback = RunCheckpoint(dirpath=tmp_path, monitor="val/exact_match", mode="max")
    with caplog.at_level("INFO", logger="qa_seq2seq.training.callbacks"), \
            pytest.warns(UserWarning, match="dirpath has changed from None"):
        callback.load_state_dict({**checkpoint_state(tmp_path), "dirpath": None})
    assert caplog.records == []


def test_a_run_in_place_loads_its_state_unchanged_under_lightnings_key(tmp_path, caplog):
    here = tmp_path / "run/checkpoints"
    callback = RunCheckpoint(dirpath=here, monitor="val/exact_match", mode="max")
    with caplog.at_level("INFO", logger="qa_seq2seq.training.callbacks"):
        callback.load_state_dict(checkpoint_state(here))
    assert caplog.records == []  # nothing moved, nothing said
    assert (callback.best_model_path, float(callback.best_model_score)) == (
        str(here / "best.ckpt"), 0.75)
    assert callback.best_k_models == checkpoint_state(here)["best_k_models"]
    lightning = ModelCheckpoint(dirpath=here, monitor="val/exact_match", mode="max")
    assert callback.state_key == lightning.state_key
