"""Atomic checkpoint writes: the temporary file beside the target, whatever TMPDIR is; a failed
write leaves the previous file as it was and says which file and why."""

import errno
import os
import tempfile

import pytest
import torch

from qa_seq2seq.errors import CheckpointError
from qa_seq2seq.training.saving import AtomicCheckpointIO, atomic_save


def test_the_temporary_file_sits_beside_the_target_not_in_tmpdir(tmp_path, monkeypatch):
    elsewhere, target = tmp_path / "tmpdir", tmp_path / "run" / "last.ckpt"
    elsewhere.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
    renamed, real_replace = [], os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append((src, dst)),
                                                         real_replace(src, dst)))
    AtomicCheckpointIO().save_checkpoint({"w": torch.arange(3)}, target)
    (source, destination), = renamed
    assert os.path.dirname(source) == str(target.parent) and destination == target
    assert torch.equal(torch.load(target)["w"], torch.arange(3))
    assert list(elsewhere.iterdir()) == [] and os.listdir(target.parent) == ["last.ckpt"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_refused_write_keeps_the_previous_file_and_names_it(tmp_path, monkeypatch, code):
    target = tmp_path / "last.ckpt"
    atomic_save({"step": 1}, target)
    before = target.read_bytes()

    def fail(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(CheckpointError) as error:
        atomic_save({"step": 2, "w": torch.zeros(1000)}, target)
    assert str(error.value).startswith(f"cannot write {target}: {os.strerror(code)}; the previous "
                                       "checkpoint there, if any, is intact")
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["last.ckpt"]


def test_an_unwritable_directory_is_one_message(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(CheckpointError, match=r"^cannot write .*last.ckpt: Permission denied: "
                                              r"choose a writable output_dir$"):
        atomic_save({}, tmp_path / "last.ckpt")


def test_training_saves_through_it_and_keeps_the_configured_plugins():
    from lightning.pytorch.plugins.io import TorchCheckpointIO
    from lightning.pytorch.plugins.precision import MixedPrecision
    from omegaconf import OmegaConf

    from qa_seq2seq.train import make_trainer

    base = {"_target_": "lightning.pytorch.Trainer", "accelerator": "cpu", "logger": False,
            "enable_checkpointing": False}
    trainer = make_trainer(OmegaConf.create(base))
    assert type(trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    mixed = {"_target_": "lightning.pytorch.plugins.precision.MixedPrecision",
             "precision": "bf16-mixed", "device": "cpu"}
    trainer = make_trainer(OmegaConf.create({**base, "plugins": [mixed]}))
    assert isinstance(trainer.strategy.precision_plugin, MixedPrecision)
    assert type(trainer.strategy.checkpoint_io) is AtomicCheckpointIO
    own = {"_target_": "lightning.pytorch.plugins.io.TorchCheckpointIO"}
    trainer = make_trainer(OmegaConf.create({**base, "plugins": [own]}))  # a user's own IO wins
    assert type(trainer.strategy.checkpoint_io) is TorchCheckpointIO


def test_a_temporary_file_left_by_a_killed_write_goes_at_the_next_save(tmp_path):
    leftover = tmp_path / ".last.ckpt.abc123.tmp"
    leftover.write_bytes(b"half a checkpoint")
    other = tmp_path / ".best.ckpt.abc123.tmp"  # another checkpoint's: not this save's business
    other.write_bytes(b"x")
    atomic_save({"step": 1}, tmp_path / "last.ckpt")
    assert not leftover.exists() and other.exists()
