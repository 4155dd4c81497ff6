"""A stored config is data: fuzzed configs build nothing outside ``qa_seq2seq.registry``, and
every entry point refuses them with one message and exit status 2."""

import builtins
import importlib
import inspect
import logging
import os
import pkgutil
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import qa_seq2seq
from qa_seq2seq.compatibility import MOVED
from qa_seq2seq.decoding.checkpoint import CheckpointError, build_model, load_model
from qa_seq2seq.decoding.runs import resolve_checkpoint
from qa_seq2seq.registry import DATA, INITIALIZER, NETWORK, build

ROOT = Path(__file__).resolve().parents[1]
REGISTERED = {name for places in (NETWORK, DATA, INITIALIZER) for targets in places.values()
              for name in targets}
# The issue's own examples, besides whatever the draw finds.
KNOWN = ["qa_seq2seq.decoding.checkpoint.Path.write_text", "qa_seq2seq.decoding.checkpoint.torch.load",
         "qa_seq2seq.errors.os.system", "os.system", "builtins.exec", "subprocess.Popen"]


class Called(BaseException):
    """Raised by a patched dangerous function: a BaseException, so no ``except Exception`` on
    the way up can swallow it."""


@pytest.fixture
def nothing_dangerous(monkeypatch):
    """Make every function that could do harm fail loudly if anything calls it."""
    def refuse(name):
        def called(*args, **kwargs):
            raise Called(name)
        return called

    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            raise Called(f"open({file!r}, {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    for owner, name in [(os, "system"), (os, "popen"), (os, "remove"), (os, "unlink"),
                        (subprocess, "Popen"), (subprocess, "run"), (shutil, "rmtree"),
                        (Path, "write_text"), (Path, "write_bytes"), (Path, "unlink"),
                        (Path, "mkdir"), (torch, "load"), (torch, "save"), (builtins, "exec"),
                        (builtins, "eval")]:
        monkeypatch.setattr(owner, name, refuse(f"{getattr(owner, '__name__', owner)}.{name}"))
    monkeypatch.setattr(builtins, "open", read_only_open)


@pytest.fixture(scope="module")
def targets() -> list[str]:
    """Names a hostile config could use: every attribute of the package's modules, and one
    level into each module and class they hold (``qa_seq2seq.errors.os.system``)."""
    names = set(KNOWN) | REGISTERED
    for info in pkgutil.walk_packages(qa_seq2seq.__path__, "qa_seq2seq."):
        module = importlib.import_module(info.name)
        for attr in dir(module):
            if attr.startswith("__"):
                continue
            names.add(f"{module.__name__}.{attr}")
            value = getattr(module, attr)
            if inspect.ismodule(value) or inspect.isclass(value):
                names.update(f"{module.__name__}.{attr}.{sub}" for sub in dir(value)
                             if not sub.startswith("__"))
    return sorted(names)


def hostile_node(rng: random.Random, targets: list[str], marker: Path, depth: int = 0):
    """A config node that names a drawn target, with arguments, possibly nested."""
    name = rng.choice(targets)
    kind = rng.randrange(5)
    if kind == 0:
        node = {"_target_": name, "_args_": [str(marker)]}
    elif kind == 1:
        node = {"_target_": name, "_partial_": rng.random() < 0.5, "_recursive_": True,
                "_convert_": "all", "path": str(marker)}
    elif kind == 2:
        node = {"_target_": name, "_call_": False, "data": str(marker)}
    elif kind == 3:  # a registered target at any place, carrying a hostile argument
        node = {"_target_": rng.choice(sorted(REGISTERED)), "_partial_": rng.random() < 0.5,
                "inner": hostile_node(rng, targets, marker, depth + 1) if depth < 2
                else {"_target_": name}}
    else:
        return rng.choice([f"${{oc.env:HOME}}/{marker}", f"${{{name}:{marker}}}", "${seed}"])
    if rng.random() < 0.3 and depth < 2:
        node["nested"] = [hostile_node(rng, targets, marker, depth + 1)]
    return node


def positions(config, path=()):
    """Every place a node sits in ``config``: the root, each map value, each list item."""
    yield path
    children = config.items() if isinstance(config, dict) else \
        enumerate(config) if isinstance(config, list) else ()
    for key, value in children:
        yield from positions(value, (*path, key))


def replaced(config, path, node):
    if not path:
        return node
    copy = config.copy()
    copy[path[0]] = replaced(config[path[0]], path[1:], node)
    return copy


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    # A stored network config as train.py writes it (resolved), with attention and sharing set.
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["output_dir=.", "model/net/attention=dot",
                                          "model/init=orthogonal", "data=toy"])
    cfg.model.net.vocab_size = 20
    return {"net": OmegaConf.to_container(cfg.model.net, resolve=True),
            "data": OmegaConf.to_container(cfg.data, resolve=True),
            "init": OmegaConf.to_container(cfg.model.init, resolve=True)}


def test_the_stored_configs_as_written_still_build(stored):
    model = build_model(stored["net"], "stored")
    assert model.decoder.attention is not None and model.vocab_size == 20
    assert build(stored["init"], INITIALIZER, "init").plan(model)


@pytest.mark.parametrize("old_name", ["qa_seq2seq.model.Seq2Seq", "qa_seq2seq.builder.build_network"])
def test_a_network_stored_under_an_old_name_builds_the_same_network(stored, old_name):
    """Checkpoints written before the builder (``qa_seq2seq.model.Seq2Seq``) or before the layers
    (``qa_seq2seq.builder.build_network``, cells as ``qa_seq2seq.rnn.*``) build the same network,
    parameter for parameter."""
    assert stored["net"]["_target_"] == "qa_seq2seq.network.builder.build_network"
    cell = stored["net"]["cell"]["_target_"].replace("network.rnn", "rnn")
    old = build_model({**stored["net"], "_target_": old_name,
                       "cell": {**stored["net"]["cell"], "_target_": cell}}, "old")
    new = build_model(stored["net"], "new")
    assert {k: v.shape for k, v in old.state_dict().items()} == \
        {k: v.shape for k, v in new.state_dict().items()}


def test_every_moved_name_is_read_as_a_target_that_exists():
    """Each old name maps to a target some place builds, or (callbacks, schedules, searches,
    the module) to one the shipped configs name."""
    conf = "\n".join(p.read_text() for p in (ROOT / "conf").rglob("*.yaml"))
    registered = {name for places in (NETWORK, DATA, INITIALIZER) for allowed in places.values()
                  for name in allowed}
    for old, new in MOVED.items():
        assert old not in registered and f"_target_: {old}" not in conf
        assert new in registered or f"_target_: {new}" in conf, new
        module, _, attribute = new.rpartition(".")
        if module.endswith(".Tokenizer"):
            module, attribute = module.rpartition(".")[0], "Tokenizer"
        assert hasattr(importlib.import_module(module), attribute), new


@pytest.mark.parametrize("part,places", [("net", NETWORK), ("data", DATA),
                                         ("init", INITIALIZER)])
def test_fuzzed_stored_configs_are_refused_and_call_nothing(stored, targets, part, places,
                                                            tmp_path, nothing_dangerous):
    rng, marker = random.Random(part), tmp_path / "pwned"
    config = stored[part]
    spots = list(positions(config))
    for trial in range(400):
        node = hostile_node(rng, targets, marker)
        hostile = replaced(config, rng.choice(spots), node)
        if rng.random() < 0.3:  # and a second one elsewhere
            hostile = replaced(hostile, rng.choice(list(positions(hostile))),
                               hostile_node(rng, targets, marker))
        with pytest.raises(CheckpointError):
            build(hostile, places, f"trial {trial}")
    assert not marker.exists()


@pytest.mark.parametrize("value", [
    {"_target_": "qa_seq2seq.network.rnn.LSTM"},  # a cell stored as an object, not a factory
    {"_target_": "qa_seq2seq.network.sharing.Sharing", "_partial_": True},
    {"_target_": "qa_seq2seq.network.rnn.LSTM", "_partial_": True, "hidden_size": "${oc.env:HOME}"},
    {"_target_": "qa_seq2seq.network.rnn.LSTM", "_partial_": True, "sizes": {"_args_": [1]}},
    {"_target_": "qa_seq2seq.network.rnn.LSTM", "_partial_": True, "no_such_option": 1},
    {"_target_": "qa_seq2seq.network.builder.build_network"},  # the network where a cell belongs
    "qa_seq2seq.network.rnn.LSTM",  # a name where a config belongs
])
def test_each_place_takes_only_its_own_targets_as_data(stored, value, nothing_dangerous):
    with pytest.raises(CheckpointError, match=r"^x: "):
        build_model({**stored["net"], "cell": value}, "x")


def test_nesting_deeper_than_any_config_is_refused(stored):
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(CheckpointError, match="nested more than 32 levels"):
        build_model({**stored["net"], "scopes": deep}, "x")


@pytest.fixture(scope="module")
def hostile_checkpoints(smoke_run, tmp_path_factory):
    """Copies of the smoke run's checkpoint with the issue's three exploits stored in them."""
    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "pwned"
    ckpt = torch.load(resolve_checkpoint(smoke_run[0]), weights_only=True)
    write = {"_target_": "qa_seq2seq.decoding.checkpoint.Path.write_text",
             "_args_": [{"_target_": "qa_seq2seq.decoding.checkpoint.Path", "_args_": [str(marker)]}, "x"]}
    pickle = {"_target_": "qa_seq2seq.decoding.checkpoint.torch.load", "f": str(marker),
              "weights_only": False}
    system = {"_target_": "qa_seq2seq.errors.os.system", "_args_": [f"touch {marker}"]}
    paths = []
    for name, where, node in [("write", "net", write), ("pickle", "attention", pickle),
                              ("system", "data", system)]:
        payload = {**ckpt["qa_seq2seq"]}
        if where == "net":
            payload["net"] = node
        elif where == "attention":
            payload["net"] = {**payload["net"], "attention": node}
        else:
            payload["data"] = {**payload["data"], "generate": node}
        path = folder / name / "checkpoints" / "best.ckpt"
        path.parent.mkdir(parents=True)
        torch.save({**ckpt, "qa_seq2seq": payload}, path)
        paths.append(path.parent.parent)
    return paths, marker


def _refused_in_process(main, argv, caplog, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert exit_.value.code == 2, (errors, capsys.readouterr())
    assert len(errors) == 1 and errors[0].startswith("error: ") and "refused" in errors[0]
    caplog.clear()


def test_every_entry_point_refuses_them_with_one_message(hostile_checkpoints, tmp_path, caplog,
                                                         capsys, monkeypatch):
    from qa_seq2seq import Answerer, decode, export, parameters, serve

    runs, marker = hostile_checkpoints
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    for run in runs:  # the network's config and the data config: every command that loads it
        _refused_in_process(decode.main, ["--checkpoint", str(run)], caplog, capsys)
        _refused_in_process(parameters.main, ["--checkpoint", str(run)], caplog, capsys)
        _refused_in_process(export.main, ["--checkpoint", str(run), "--out",
                                          str(tmp_path / run.name)], caplog, capsys)
        _refused_in_process(serve.main, ["--checkpoint", str(run), "--port", "0"], caplog,
                            capsys)
        with pytest.raises(CheckpointError, match="refused _target_"):
            Answerer.from_checkpoint(run)
        with pytest.raises(CheckpointError, match="refused _target_"):
            load_model(run)
    assert not marker.exists()


@pytest.mark.parametrize("which", [0, 2])
@pytest.mark.cli
def test_evaluate_refuses_them_with_exit_2(hostile_checkpoints, which):
    runs, marker = hostile_checkpoints
    result = subprocess.run([sys.executable, "-m", "qa_seq2seq.evaluate",
                             f"ckpt_path={runs[which]}"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    output = result.stdout + result.stderr  # Hydra's logging goes to stdout
    assert result.returncode == 2, output
    assert "error: " in output and "refused _target_" in output and "Traceback" not in output
    assert not marker.exists()
