"""Learning-rate and teacher-forcing schedules: formulas, refusals, and real training runs."""

import json
import math

import pytest
import torch

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.training.schedules import TeacherForcing, plateau, warmup_decay
from tests.conftest import compose_train, toy_data_overrides


def rates(schedule, steps):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = schedule(optimizer)["scheduler"]
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_warmup_then_cosine_and_linear():
    cosine = rates(lambda o: warmup_decay(o, 110, "cosine", warmup_steps=10), 110)
    assert cosine[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert cosine[10] == pytest.approx(1.0) and cosine[60] == pytest.approx(0.5)
    assert 0 < cosine[-1] < 0.001  # ends near 0, never before the last step
    linear = rates(lambda o: warmup_decay(o, 100, "linear", min_lr_ratio=0.1), 100)
    assert linear[0] == 1.0 and linear[50] == pytest.approx(0.55)
    assert min(linear) >= 0.1
    # decay=constant (scheduler=warmup) needs no step count: a max_time budget alone gives none.
    constant = rates(lambda o: warmup_decay(o, math.inf, "constant", warmup_steps=10), 50)
    assert constant == pytest.approx([(i + 1) / 10 for i in range(10)] + [1.0] * 40)


def test_warmup_stable_decay():
    """decay_fraction=0.25: warmup, the peak rate until the last quarter, then linear to 0."""
    wsd = rates(lambda o: warmup_decay(o, 110, "linear", warmup_steps=10, decay_fraction=0.25), 110)
    assert wsd[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert wsd[10:85] == pytest.approx([1.0] * 75)  # 110 - 0.25 x 100 = step 85 starts the decay
    assert wsd[85:] == pytest.approx([1 - i / 25 for i in range(25)])
    whole = rates(lambda o: warmup_decay(o, 110, "cosine", warmup_steps=10, decay_fraction=1.0), 110)
    assert whole == rates(lambda o: warmup_decay(o, 110, "cosine", warmup_steps=10), 110)


def test_schedules_that_cannot_work_are_refused():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match="trainer.max_epochs or trainer.max_steps"):
        warmup_decay(optimizer, math.inf)
    with pytest.raises(ConfigError, match="warmup_steps=100 is not below"):
        warmup_decay(optimizer, 100, warmup_steps=100)
    with pytest.raises(ConfigError, match="decay="):
        warmup_decay(optimizer, 100, decay="step")
    with pytest.raises(ConfigError, match="min_lr_ratio=0.1 does nothing"):
        warmup_decay(optimizer, 100, decay="constant", min_lr_ratio=0.1)
    with pytest.raises(ConfigError, match="decay_fraction=0.5 does nothing"):
        warmup_decay(optimizer, 100, decay="constant", decay_fraction=0.5)
    with pytest.raises(ConfigError, match=r"decay_fraction in \(0, 1\] \(got 0\)"):
        warmup_decay(optimizer, 100, decay_fraction=0)
    with pytest.raises(ConfigError, match="factor"):
        plateau(optimizer, math.inf, factor=2.0)


def test_teacher_forcing_decays():
    assert TeacherForcing()(10**6) == 1.0
    assert TeacherForcing("linear", steps=100)(25) == pytest.approx(0.75)
    assert TeacherForcing("linear", steps=100, min_probability=0.2)(1000) == 0.2
    assert TeacherForcing("exponential", k=0.99)(100) == pytest.approx(0.99**100)
    assert TeacherForcing("inverse_sigmoid", k=10)(0) == pytest.approx(10 / 11)
    assert TeacherForcing("inverse_sigmoid", k=10)(10**6) == pytest.approx(0.0)
    for bad in ({"decay": "cosine"}, {"decay": "exponential", "k": 2.0},
                {"decay": "inverse_sigmoid", "k": 0.5}, {"min_probability": 1.5},
                {"decay": "linear", "steps": 10, "k": 0.5}, {"decay": "exponential"},
                {"steps": 100}):
        with pytest.raises(ConfigError, match="scheduled_sampling"):
            TeacherForcing(**bad)


@pytest.mark.parametrize("scheduler", ["cosine", "linear", "plateau", "warmup"])
@pytest.mark.train
def test_a_run_sized_by_max_epochs_only_gets_a_working_schedule(scheduler, tmp_path):
    """The total step count comes from max_epochs (max_steps stays -1): the old cosine config
    used T_max=${trainer.max_steps} and trained at lr 0."""
    from qa_seq2seq.train import train

    record = tmp_path / "lr.json"
    cfg = compose_train(["+experiment=smoke", f"scheduler={scheduler}", "trainer.max_epochs=2",
                         *(["scheduler.warmup_steps=3"] if scheduler != "plateau" else []),
                         "+callbacks.record._target_=tests.helpers.RecordLR",
                         f"+callbacks.record.path={record}",
                         *toy_data_overrides(tmp_path / "data")], tmp_path / "run")
    assert cfg.trainer.max_steps == -1
    metrics = train(cfg)
    lr = json.loads(record.read_text())
    assert len(lr) == metrics["global_step"] == 16  # 256 rows / 32 a batch x 2 epochs
    if scheduler == "plateau":
        assert lr == [0.002] * 16  # two epochs are not enough patience to lower it
        return
    assert lr[0] == pytest.approx(0.002 / 3) and max(lr) == pytest.approx(0.002)
    if scheduler == "warmup":  # up over 3 steps, then the base rate to the end
        assert lr[2:] == pytest.approx([0.002] * 14)
        return
    assert all(r > 0 for r in lr) and lr[-1] < 0.2 * 0.002  # decays over the whole run


@pytest.mark.train
def test_scheduled_sampling_trains_and_logs_its_probability(tmp_path):
    from qa_seq2seq.train import train

    cfg = compose_train(["+experiment=smoke", "scheduled_sampling=linear",
                         "scheduled_sampling.steps=16", *toy_data_overrides(tmp_path / "data")],
                        tmp_path / "run")
    metrics = train(cfg)
    assert metrics["train/teacher_forcing"] == pytest.approx(1 - 7 / 16)  # logged at the last step


@pytest.mark.train
def test_a_warmup_longer_than_the_run_is_refused(tmp_path):
    """`+experiment=arith_best trainer.max_steps=...` below its 1,000 warmup steps would never
    reach optimizer.lr: refused, naming both numbers and what to change."""
    from qa_seq2seq.train import train

    cfg = compose_train(["+experiment=smoke", "scheduler=warmup", "trainer.max_steps=5",
                         *toy_data_overrides(tmp_path / "data")], tmp_path / "run")
    with pytest.raises(ConfigError, match="warmup_steps=1000 is not below the 5 training steps"
                                          ".*lower scheduler.warmup_steps"):
        train(cfg)
