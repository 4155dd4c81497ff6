"""resume.py's rules in-process (test_resume.py runs whole trainings in subprocesses): which run
continues, which config changes are refused, when a run is finished, which
data files a resume refuses."""

import os
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from qa_seq2seq.errors import ConfigError, DataError
from qa_seq2seq.training.callbacks import DataFiles, fingerprint
from qa_seq2seq.training.resume import (
    MAY_CHANGE,
    Finished,
    check_data_files,
    check_not_finished,
    check_unchanged,
    find_run,
    hydra_run_dir,
)


def make_run(root: Path, name: str, age: int) -> Path:
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints/last.ckpt").touch()
    os.utime(run / "checkpoints/last.ckpt", (1_000 + age, 1_000 + age))
    return run


def test_find_run_takes_the_newest_of_the_run_name_a_directory_or_a_checkpoint(tmp_path):
    outputs = tmp_path / "outputs"
    make_run(outputs / "toy", "b", age=1)
    newest = make_run(outputs / "toy", "a", age=2)
    make_run(outputs / "other", "c", age=3)  # another run_name: never chosen
    best_only = outputs / "toy/d/checkpoints"  # newer, but no last.ckpt to resume from
    best_only.mkdir(parents=True)
    (best_only / "best.ckpt").touch()
    assert find_run("auto", "toy", outputs) == newest
    assert find_run(str(newest), "ignored", outputs) == newest
    assert find_run(str(newest / "checkpoints/last.ckpt"), "ignored", outputs) == newest
    with pytest.raises(ConfigError) as error:
        find_run("auto", "missing", outputs)
    assert str(error.value) == (f"resume=auto: no run of run_name='missing' with "
                                f"checkpoints/last.ckpt under {outputs}/; train first, or pass "
                                "resume=<run directory>")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as error:
        find_run(str(tmp_path / "empty"), "toy", outputs)
    assert str(error.value) == (f"resume={tmp_path / 'empty'}: {tmp_path / 'empty'} has no "
                                "checkpoints/last.ckpt to resume from")


def test_hydra_run_dir_is_new_or_inside_the_resumed_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = make_run(Path("outputs/toy"), "2026-01-01_00-00-00", age=0)
    assert Path(hydra_run_dir("toy", None)).parent == Path("outputs/toy")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", Path(hydra_run_dir("toy", None)).name)
    assert Path(hydra_run_dir("toy", "auto")).parent == run
    assert Path(hydra_run_dir("toy", "auto")).name.startswith("resumed-")
    # An unusable resume still gets a directory: train() reports the error with its message.
    assert Path(hydra_run_dir("toy", "nowhere")).parent == Path("outputs/toy")


def test_a_resumed_config_may_change_only_the_listed_keys(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    stored = {"seed": 1, "model": {"net": {"hidden_size": 8}}, "trainer": {"max_steps": 10},
              "resume": None, "output_dir": "a"}
    OmegaConf.save(stored, run / ".hydra/config.yaml")
    given = OmegaConf.create({**stored, "trainer": {"max_steps": 20, "log_every_n_steps": 5},
                              "resume": "auto", "output_dir": "b"})
    check_unchanged(given, run)  # only MAY_CHANGE keys differ
    changed = OmegaConf.create({**stored, "seed": 2, "model": {"net": {"hidden_size": 9}},
                                "extra": True})
    with pytest.raises(ConfigError) as error:
        check_unchanged(changed, run)
    assert str(error.value) == (
        f"resume: this config differs from the run's ({run / '.hydra/config.yaml'}):\n"
        "  extra: run has None, given True\n"
        "  model.net.hidden_size: run has 8, given 9\n"
        "  seed: run has 1, given 2\n"
        f"A resumed run keeps its config; only {', '.join(MAY_CHANGE)} may change. Drop these "
        f"overrides, or start a new run from this one's weights with "
        f"model.init_from.checkpoint={run}")
    with pytest.raises(ConfigError, match=r"resume: .*config.yaml is missing, so the run's config "
                                          r"is unknown"):
        check_unchanged(given, tmp_path)


def test_a_run_made_before_a_target_was_renamed_resumes_with_the_new_name(tmp_path):
    (tmp_path / ".hydra").mkdir()
    old = {"callbacks": {"checkpoint": {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint"}},
           "freeze": ["encoder.*"]}
    OmegaConf.save(old, tmp_path / ".hydra/config.yaml")
    new = {**old, "callbacks": {"checkpoint": {"_target_": "qa_seq2seq.training.callbacks.RunCheckpoint"}}}
    check_unchanged(OmegaConf.create(new), tmp_path)
    before_callbacks_moved = {**old, "callbacks": {"checkpoint": {
        "_target_": "qa_seq2seq.training.resume.RunCheckpoint"}}}
    OmegaConf.save(before_callbacks_moved, tmp_path / ".hydra/config.yaml")
    check_unchanged(OmegaConf.create(new), tmp_path)
    OmegaConf.save(old, tmp_path / ".hydra/config.yaml")
    net = {**old, "model": {"net": {"_target_": "qa_seq2seq.model.Seq2Seq"}}}
    OmegaConf.save(net, tmp_path / ".hydra/config.yaml")
    check_unchanged(OmegaConf.create(
        {**new, "model": {"net": {"_target_": "qa_seq2seq.network.builder.build_network"}}}), tmp_path)
    OmegaConf.save(old, tmp_path / ".hydra/config.yaml")
    backwards = {**old, "callbacks": {"checkpoint": {"_target_": "my.OtherCheckpoint"}}}
    with pytest.raises(ConfigError, match="callbacks.checkpoint._target_: run has"):
        check_unchanged(OmegaConf.create(backwards), tmp_path)


def test_at_most_twenty_differences_are_listed(tmp_path):
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save({f"k{i:02d}": 0 for i in range(25)}, tmp_path / ".hydra/config.yaml")
    with pytest.raises(ConfigError) as error:
        check_unchanged(OmegaConf.create({f"k{i:02d}": 1 for i in range(25)}), tmp_path)
    listed = [line for line in str(error.value).splitlines() if line.startswith("  k")]
    assert listed[0].startswith("  k00:") and listed[-1].startswith("  k19:") and len(listed) == 20


@pytest.mark.parametrize("raw, trainer, reached", [
    ({"global_step": 10, "epoch": 0}, {"max_steps": 10, "max_epochs": 5},
     "step 10, trainer.max_steps=10"),
    ({"global_step": 11, "epoch": 0}, {"max_steps": 10, "max_epochs": None},
     "step 11, trainer.max_steps=10"),
    ({"global_step": 9, "epoch": 5}, {"max_steps": 10, "max_epochs": 5},
     "epoch 5, trainer.max_epochs=5"),
    ({"global_step": 9, "epoch": 6}, {"max_steps": -1, "max_epochs": 5},
     "epoch 6, trainer.max_epochs=5"),
    ({"global_step": 9, "epoch": 4}, {"max_steps": 10, "max_epochs": 5}, None),
    ({"global_step": 99, "epoch": 99}, {"max_steps": -1, "max_epochs": -1}, None),
    ({"global_step": 99, "epoch": 99}, {"max_steps": None, "max_epochs": None}, None),
    ({}, {"max_steps": 1, "max_epochs": 1}, None),  # a checkpoint without counters: step 0
    ({"global_step": 5, "epoch": 0}, {"max_epochs": 5}, None),  # no max_steps key: no limit
])
def test_a_run_at_its_limits_is_finished(raw, trainer, reached):
    if reached is None:
        check_not_finished(raw, OmegaConf.create(trainer))
        return
    with pytest.raises(Finished) as error:
        check_not_finished(raw, OmegaConf.create(trainer))
    assert str(error.value) == f"the run is already at {reached}; raise the limit to train further"


def data_run(tmp_path: Path) -> tuple[dict, DataFiles, Path]:
    """A checkpoint's raw dict that stored the fingerprints of a train and a validation file."""
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    train.write_text('{"question": "q", "answer": "a"}\n')
    val.write_text('{"question": "v", "answer": "b"}\n')
    saved = DataFiles({"train": str(train), "validation": str(val), "test": str(val)})
    assert set(saved.files) == {"train", "validation"}  # the test split is not trained on
    raw = {"global_step": 33, "callbacks": {saved.state_key: saved.state_dict()}}
    return raw, saved, train


def test_a_resume_on_the_same_data_files_goes_on(tmp_path):
    raw, saved, _ = data_run(tmp_path)
    check_data_files(raw, saved, accept=False)
    check_data_files({"global_step": 5}, saved, accept=False)  # saved before files were stored


def test_a_changed_data_file_is_refused_naming_it_and_both_sizes(tmp_path):
    raw, _, train = data_run(tmp_path)
    old = fingerprint(str(train))
    with open(train, "a") as f:
        f.write('{"question": "q2", "answer": "a2"}\n')
    new = fingerprint(str(train))
    with pytest.raises(DataError) as error:
        check_data_files(raw, DataFiles({"train": str(train),
                                         "validation": str(tmp_path / "val.jsonl")}), accept=False)
    assert str(error.value) == (
        "resume: the data changed since step 33 was saved:\n"
        f"  data.train_file={train}: {old['size']:,} bytes (sha256 {old['sha256'][:12]}) when "
        f"trained; now {new['size']:,} bytes (sha256 {new['sha256'][:12]})\n"
        "A resumed run continues the epoch's batch order from the file it was trained on. Restore "
        "the file, start a new run from this one's weights (model.init_from.checkpoint=<run>), or "
        "add resume_data_changed=accept to go on with the new file")


def test_a_same_sized_edit_and_a_missing_file_are_changes_too(tmp_path):
    raw, _, train = data_run(tmp_path)
    train.write_text(train.read_text().replace('"a"', '"b"'))  # same size, other bytes
    val = tmp_path / "val.jsonl"
    val.unlink()
    with pytest.raises(DataError) as error:
        check_data_files(raw, DataFiles({"train": str(train), "validation": str(val)}),
                         accept=False)
    message = str(error.value)
    assert re.search(r"data\.train_file=.*: 33 bytes \(sha256 \w{12}\) when trained; now 33 "
                     r"bytes \(sha256 \w{12}\)\n", message)
    assert f"data.validation_file={val}: 33 bytes" in message and message.count("now missing") == 1


def test_accept_goes_on_and_says_what_it_does_to_the_epoch(tmp_path, caplog):
    raw, _, train = data_run(tmp_path)
    train.write_text("")
    current = DataFiles({"train": str(train), "validation": str(tmp_path / "val.jsonl")})
    with caplog.at_level("WARNING", logger="qa_seq2seq.training.resume"):
        check_data_files(raw, current, accept=True)
    [record] = caplog.records
    trained = raw["callbacks"][current.state_key]["files"]["train"]["sha256"][:12]
    empty = fingerprint(str(train))["sha256"][:12]
    assert record.getMessage() == (
        "resume_data_changed=accept: the data changed since step 33 was saved:\n"
        f"  data.train_file={train}: 33 bytes (sha256 {trained}) "
        f"when trained; now 0 bytes (sha256 {empty})\n"
        "Going on with the new file(s): the epoch in progress resumes at the batch it had "
        "reached, in the new file's order, so some of its rows are skipped or seen twice; later "
        "epochs read the new file whole, and the run no longer matches one never interrupted")


def test_a_checkpoint_without_a_step_is_named_step_0(tmp_path, caplog):
    raw, _, train = data_run(tmp_path)
    del raw["global_step"]
    train.write_text("")
    current = DataFiles({"train": str(train), "validation": str(tmp_path / "val.jsonl")})
    with pytest.raises(DataError, match=r"^resume: the data changed since step 0 was saved:"):
        check_data_files(raw, current, accept=False)
    with caplog.at_level("WARNING", logger="qa_seq2seq.training.resume"):
        check_data_files(raw, current, accept=True)
    assert "since step 0 was saved" in caplog.records[0].getMessage()
