"""callbacks.ema: the average of the weights, against a hand computation of it."""

import pytest
import torch

from qa_seq2seq.decoding.checkpoint import read_checkpoint
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.train import train
from qa_seq2seq.training.averaging import EMA, _ema_, ema_decay
from tests.conftest import compose_train, toy_data_overrides


def test_the_decay_warms_up_as_tensorflows_num_updates_does():
    assert ema_decay(0.998, 0) == pytest.approx(1 / 10)
    assert ema_decay(0.998, 90) == pytest.approx(91 / 100)
    assert ema_decay(0.998, 4490) == pytest.approx(4491 / 4500)
    assert ema_decay(0.998, 4491) == 0.998  # capped from here on
    assert ema_decay(0.5, 20) == 0.5  # 21 / 30 is above it


def test_floats_are_averaged_and_other_buffers_copied():
    averaged = [torch.tensor([0.0, 10.0]), torch.tensor([0, 1, 2]), torch.tensor(False)]
    current = [torch.tensor([1.0, 20.0]), torch.tensor([2, 2, 1]), torch.tensor(True)]
    _ema_(averaged, current, torch.tensor(100), decay=0.9)
    assert averaged[0].tolist() == pytest.approx([0.1, 11.0])  # 0.9 x avg + 0.1 x current
    assert averaged[1].tolist() == [2, 2, 1] and bool(averaged[2])


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5, -0.1])
def test_a_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ConfigError, match=rf"callbacks.ema.decay must be in \(0, 1\), got {decay}"):
        EMA(decay)


def test_validation_and_checkpoints_hold_the_average_training_keeps_its_own(tmp_path, smoke_run):
    record = tmp_path / "weights.pt"
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(smoke_run[0].parent / "data"),
                         "trainer.max_epochs=2", "callbacks.ema.decay=0.95",
                         "+callbacks.record._target_=tests.helpers.RecordWeights",
                         f"+callbacks.record.path={record}"], tmp_path / "run")
    train(cfg)
    seen = torch.load(record)
    steps = seen["steps"]  # training's own weights after each of the 16 optimizer steps
    assert len(steps) == 16
    average, expected = dict(steps[0]), []  # the first update copies the weights
    for n, weights in enumerate(steps[1:], start=1):
        d = min(0.95, (1 + n) / (10 + n))
        average = {k: d * average[k] + (1 - d) * weights[k] for k in average}
        expected.append(average)
    assert len(seen["validated"]) == 2  # one validation an epoch: after steps 8 and 16
    for (step, validated), want in zip(seen["validated"], (expected[6], expected[14])):
        for name in want:
            torch.testing.assert_close(validated[name], want[name], msg=f"step {step}: {name}")
    last = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    for name in steps[-1]:
        torch.testing.assert_close(last.state_dict[name], expected[-1][name], msg=name)
        torch.testing.assert_close(last.raw["current_model_state"][f"net.{name}"],
                                   steps[-1][name], msg=name)
        torch.testing.assert_close(seen["final"][name], steps[-1][name], msg=name)
    assert not torch.equal(last.state_dict["decoder.output.weight"],
                           steps[-1]["decoder.output.weight"])  # the two differ
