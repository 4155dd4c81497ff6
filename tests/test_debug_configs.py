"""`+debug=NAME` (conf/debug/): each runs and does what its comment says."""

from pathlib import Path

import pytest

from qa_seq2seq.train import train
from tests.conftest import compose_train, toy_data_overrides

DEBUG = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "debug").glob("*.yaml"))


@pytest.mark.parametrize("name", DEBUG)
def test_debug_configs_compose_after_an_experiment(name, tmp_path):
    cfg = compose_train(["+experiment=arith", f"+debug={name}"], tmp_path)
    assert cfg.run_name == "debug" and cfg.data.train_file == "data/arith/train.jsonl"


def run(tmp_path, name, *extra):
    cfg = compose_train(["+experiment=smoke", f"+debug={name}", *extra,
                         *toy_data_overrides(tmp_path / "data")], tmp_path / "run")
    return train(cfg)


@pytest.mark.train
def test_fast_dev_run_takes_one_step(tmp_path):
    metrics = run(tmp_path, "fdr")
    assert metrics["global_step"] == 1 and "val/exact_match" in metrics


@pytest.mark.train
def test_default_runs_one_epoch_with_anomaly_detection_and_no_logger(tmp_path):
    assert compose_train(["+experiment=smoke", "+debug=default"], tmp_path).trainer.detect_anomaly
    metrics = run(tmp_path, "default")
    assert metrics["global_step"] == 8  # 256 questions / 32, one epoch
    assert not (tmp_path / "run" / "tensorboard").exists()


@pytest.mark.train
def test_overfit_learns_two_batches_by_heart(tmp_path):
    first = run(tmp_path / "a", "overfit", "trainer.max_epochs=1")["train/loss"]
    last = run(tmp_path / "b", "overfit", "trainer.max_epochs=150", "optimizer.lr=0.01")["train/loss"]
    assert last < 0.2 * first


def test_no_logger_with_a_callback_that_needs_one_is_refused_by_name(tmp_path):
    from qa_seq2seq.errors import ConfigError

    cfg = compose_train(["+experiment=smoke", "~logger", *toy_data_overrides(tmp_path / "data")],
                        tmp_path / "run")
    with pytest.raises(ConfigError, match=r"callbacks.learning_rate logs to a logger, and there is "
                                          r"none \(~logger or logger: null\): keep one, or drop it "
                                          "with ~callbacks.learning_rate"):
        train(cfg)
