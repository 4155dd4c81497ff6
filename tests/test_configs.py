"""Every config in conf/ composes and instantiates."""

import importlib.util
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.train import make_loggers, make_trainer, optimizer_factory, train
from qa_seq2seq.training.module import set_up
from tests.conftest import compose_train, toy_data_overrides

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def instantiate_everything(cfg):
    datamodule = instantiate(cfg.data)
    cfg.model.net.vocab_size = 32
    net = set_up(**instantiate(cfg.model).keywords)  # the network and its training set-up
    optimizer = optimizer_factory(cfg.optimizer)[0](net.parameters())
    if cfg.get("scheduler"):
        instantiate(cfg.scheduler)(optimizer, total_steps=20_000)  # a real run's count
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    make_trainer(cfg.trainer, callbacks=callbacks, logger=make_loggers(cfg.get("logger")) or False)
    assert callable(instantiate(cfg.decode))
    return datamodule, net


GROUPS = ["data", "scheduled_sampling", "model/net/cell", "model/net/attention", "model/init",
          "model/net/sharing", "optimizer", "scheduler",
          "trainer", "decode", "logger", "callbacks"]
CASES = [(g, o) for g in GROUPS for o in options(g)]


@pytest.mark.parametrize("group,option", CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_group_option_composes_and_instantiates(group, option, tmp_path):
    extra = []
    if option in ("jsonl", "local"):
        extra = [f"data.{s}_file=x.jsonl" for s in ("train", "validation", "test")]
    if option == "hub":
        extra = ["data.path=org/name"]
    if option in ("tied_output", "all"):
        extra = ["model.net.embedding_size=256"]
    if group == "scheduler":
        extra = ["trainer.max_steps=100"]
    if option == "gpu":
        pytest.importorskip("torch").cuda.is_available() or pytest.skip("no GPU here")
    cfg = compose_train([f"{group}={option}", *extra], tmp_path)
    if group == "logger" and option in ("wandb", "mlflow") and not importlib.util.find_spec(option):
        with pytest.raises(ConfigError, match=rf"logger={option} needs a package .*pip install "
                                              rf"-e '.\[{option}\]'"):
            instantiate_everything(cfg)
        return
    instantiate_everything(cfg)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiment_composes_and_instantiates(experiment, tmp_path):
    instantiate_everything(compose_train([f"+experiment={experiment}"], tmp_path))


def test_evaluate_config_composes():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=["decode=beam", "split=validation"])
    assert cfg.decode.beam_size == 5 and cfg.split == "validation"


def test_per_side_cell_override(tmp_path):
    cfg = compose_train(["+model/net/cell@model.net.decoder_cell=gru", "model.net.bridge=hidden_only"],
                        tmp_path)
    net = instantiate(cfg.model.net, vocab_size=32)
    assert type(net.encoder.rnn).__name__ == "LSTM" and type(net.decoder.rnn).__name__ == "GRU"


def test_unknown_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown key model.hiden_size; the nearest: "):
        compose_train(["model.hiden_size=3"], tmp_path)


@pytest.mark.parametrize("experiment,decay", [("toy_lstm", 0.0), ("arith", 0.1), ("arith_best", 0.1)])
def test_the_arithmetic_experiments_train_with_weight_decay(experiment, decay, tmp_path):
    """What the README says each experiment trains with: with no gradient, one AdamW step shrinks
    every weight by lr x weight_decay (Adam's step leaves it where it was)."""
    cfg = compose_train([f"+experiment={experiment}"], tmp_path)
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = optimizer_factory(cfg.optimizer)[0]([weight])
    weight.grad = torch.zeros(3)
    optimizer.step()
    torch.testing.assert_close(weight.detach(), torch.full((3,), 1 - cfg.optimizer.lr * decay))
    assert optimizer.param_groups[0]["fused"] is True  # the README: one kernel for all parameters


def test_fused_null_gives_torchs_default_optimizer_step(tmp_path):
    cfg = compose_train(["optimizer.fused=null"], tmp_path)
    weight = torch.nn.Parameter(torch.ones(3))
    assert optimizer_factory(cfg.optimizer)[0]([weight]).param_groups[0]["fused"] is None


def test_fused_without_a_fused_kernel_for_the_device_is_refused_before_the_first_step(
        tmp_path, smoke_run, monkeypatch):
    from torch.utils import _foreach_utils

    monkeypatch.setattr(_foreach_utils, "_get_fused_kernels_supported_devices", lambda: ["cuda"])
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(smoke_run[0].parent / "data")],
                        tmp_path / "run")
    with pytest.raises(ConfigError, match=r"optimizer.fused=true: torch has no fused Adam for "
                                          r"torch.float32 parameters on cpu .*optimizer.fused=null"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()  # refused before training


def test_fused_check_leaves_it_to_torch_without_torchs_private_device_list(monkeypatch):
    from torch.utils import _foreach_utils

    from qa_seq2seq.training.module import check_fused

    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([weight], fused=True)
    monkeypatch.setattr(_foreach_utils, "_get_fused_kernels_supported_devices", lambda: ["cuda"])
    with pytest.raises(ConfigError, match="optimizer.fused=null"):
        check_fused(optimizer)
    monkeypatch.delattr(_foreach_utils, "_get_fused_kernels_supported_devices")
    check_fused(optimizer)  # a torch without the helper: no traceback, torch checks at its step


def test_toy_best_is_the_readme_recipe(tmp_path):
    """What the README says toy_best is: place embeddings, dot attention over the reversed
    question, 128 units without dropout, AdamW sparing the embeddings with its decay from step
    6,000, 32,000 steps with no early stopping."""
    cfg = compose_train(["+experiment=toy_best"], tmp_path)
    _, net = instantiate_everything(cfg)
    names = dict(net.named_parameters())
    assert "encoder.places.embedding.weight" in names
    assert net.decoder.attention is not None and net.encoder.rnn.hidden_size == 128
    assert cfg.data.reverse_source and cfg.model.net.dropout == 0
    optimizer, options = optimizer_factory(cfg.optimizer)
    assert optimizer.func is torch.optim.AdamW and optimizer.keywords["weight_decay"] == 0.1
    assert options == {"no_decay": ["*embedding*"], "decay_from_step": 6000}
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c]
    assert callbacks and not any(isinstance(c, EarlyStopping) for c in callbacks)
    assert cfg.trainer.max_epochs == -1 and cfg.trainer.max_steps == 32000


def test_arith_best_on_a_users_files_keeps_its_model_optimizer_and_reading_order(tmp_path):
    """The README's command for questions about numbers: `data=jsonl` after the experiment swaps
    the files and keeps what the experiment chose."""
    cfg = compose_train(["+experiment=arith_best", "data=jsonl", "data.train_file=my/train.jsonl",
                         "data.validation_file=my/dev.jsonl", "data.test_file=my/test.jsonl"],
                        tmp_path)
    assert cfg.data.train_file == "my/train.jsonl" and cfg.data.generate is None  # nothing generated
    assert cfg.data.reverse_source and cfg.model.net.number_places
    assert cfg.data.tokenizer.model_type == "bpe" and cfg.data.tokenizer.split_digits
    assert cfg.model.net.attention.score == "dot" and cfg.model.net.dropout == 0.0
    assert cfg.optimizer._target_ == "torch.optim.AdamW" and cfg.optimizer.weight_decay == 0.1
    assert cfg.optimizer.decay_from_step == 2000
    assert cfg.scheduler.decay == "constant" and cfg.scheduler.warmup_steps == 1000
    assert cfg.optimizer.lr == 3e-3
    _, net = instantiate_everything(cfg)  # 128 units in both RNNs
    shapes = {name: w.shape for name, w in net.named_parameters() if "weight_hh" in name}
    assert shapes and all(shape[1] == 128 for shape in shapes.values()), shapes


@pytest.mark.parametrize("key, value, parsed, off", [
    ("no_decay", "[*embedding*]", ["*embedding*"], r"\[\]"), ("decay_from_step", "100", 100, "0")])
def test_weight_decay_options_without_weight_decay_are_refused(tmp_path, key, value, parsed, off):
    """A key that would do nothing is refused, saying what would work."""
    cfg = compose_train([f"+optimizer.{key}={value}"], tmp_path)  # Adam, no decay
    with pytest.raises(ConfigError, match=rf"set optimizer.{key}={off}, or use optimizer=adamw"):
        optimizer_factory(cfg.optimizer)
    adamw = compose_train(["optimizer=adamw", f"optimizer.{key}={value}"], tmp_path)
    assert optimizer_factory(adamw.optimizer)[1][key] == parsed


def test_decay_from_step_at_or_after_the_last_step_is_refused(tmp_path):
    cfg = compose_train(["optimizer=adamw", "optimizer.decay_from_step=100", "trainer.max_steps=100"],
                        tmp_path)
    with pytest.raises(ConfigError, match=r"decay_from_step=100: the run ends at trainer.max_steps"
                                          r"=100, before any decay; set it below 100"):
        train(cfg)
