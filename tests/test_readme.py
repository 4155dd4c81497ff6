"""The README's and the docs pages' commands stay true: every command line in their bash blocks is
composed or parsed (docs/experiments/ is a dated log, not instructions, and is left out).

Training and evaluation commands are composed with Hydra exactly as given (an unknown key, a
missing group option or a malformed override fails here), `parameters` commands build their model,
decode commands go through the CLI's argument parser, and `make` targets must exist. Commands
that train for minutes are not run here: their keys are what drifts.
"""

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import compose_train

ROOT = Path(__file__).resolve().parents[1]


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks_of(language: str) -> list[str]:
    """The ```language blocks of every page, each once."""
    return list(dict.fromkeys(block for page in PAGES for block in
                              re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)))


def readme_commands() -> list[str]:
    """Every command line of the pages' ```bash blocks, continuation lines joined."""
    blocks = blocks_of("bash")
    lines = [line.split(" #")[0].strip()
             for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    # <run> stands for a run directory the reader has: a name Hydra can parse takes its place.
    # The console scripts of the Hydra entry points are their modules.
    return [re.sub(r"^qa-seq2seq-(train|evaluate)\b", r"python -m qa_seq2seq.\1",
                   line.split("| ")[-1].replace("<run>", "RUN"))
            for line in lines if line and not line.startswith("#")]


def first_of_sweeps(args: list[str]) -> list[str]:
    """``model/net/cell=lstm,gru`` -> ``model/net/cell=lstm`` (one job of a ``-m`` sweep)."""
    return [a.split(",")[0] if "=" in a and not re.search(r"[\[{]", a) else a for a in args]


COMMANDS = readme_commands()


def test_the_readme_has_commands_of_every_kind():
    starts = {c.split()[0] if not c.startswith("python") else " ".join(c.split()[:3])
              for c in COMMANDS}
    assert {"make", "python -m qa_seq2seq.train", "python -m qa_seq2seq.parameters"} <= starts
    assert any("qa-seq2seq-decode" in c for c in COMMANDS)
    covered = ("make", "python -m qa_seq2seq.train", "python -m qa_seq2seq.suggest",
               "python -m qa_seq2seq.parameters",
               "python -m qa_seq2seq.export", "qa-seq2seq-serve", "curl",
               "pip install .", "python -m qa_seq2seq.evaluate")  # these two: tests/test_wheel.py
    assert [c for c in COMMANDS if not c.startswith(covered) and "qa-seq2seq-decode" not in c] == []


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python -m qa_seq2seq.train")])
def test_training_commands_compose(command, tmp_path):
    args = [a for a in shlex.split(command)[3:] if a != "-m"]
    compose_train(first_of_sweeps(args), tmp_path)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python -m qa_seq2seq.suggest")])
def test_suggest_commands_compose(command, tmp_path):
    """Their overrides are the training config's (tests/test_suggest.py runs the command)."""
    compose_train(shlex.split(command)[3:], tmp_path)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python -m qa_seq2seq.parameters")
                                     and "--checkpoint" not in c])
def test_parameters_commands_build_their_model(command):
    from qa_seq2seq.parameters import from_config

    assert "trainable:" in from_config(shlex.split(command)[3:])


@pytest.mark.parametrize("command", [c for c in COMMANDS if "qa-seq2seq-decode" in c])
def test_decode_commands_parse(command):
    from qa_seq2seq.decode import parse_args

    args = shlex.split(command.split("qa-seq2seq-decode", 1)[1].split("<")[0])
    parse_args(args)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python -m qa_seq2seq.export")])
def test_export_commands_parse(command):
    from qa_seq2seq.export import parse_args

    args = parse_args(shlex.split(command)[3:])
    assert args.checkpoint and args.out


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("qa-seq2seq-serve")])
def test_serve_commands_parse(command):
    from qa_seq2seq.serve import parse_args

    parse_args(shlex.split(command)[1:])


def test_curl_examples_are_answered(smoke_run):
    """Each curl example's request, sent to a server over the smoke run, gets a 200 answer."""
    import urllib.request

    from qa_seq2seq.decoding.answerer import Answerer
    from qa_seq2seq.serve import Service
    from tests.conftest import serving

    curls = [shlex.split(c) for c in COMMANDS if c.startswith("curl")]
    assert curls
    with serving(Service(Answerer.from_checkpoint(smoke_run[0]))) as url:
        for args in curls:
            address = next(a for a in args if a.startswith("localhost:"))
            data = args[args.index("-d") + 1].encode() if "-d" in args else None
            with urllib.request.urlopen(url + address.split("8000", 1)[1], data=data,
                                        timeout=60) as response:
                reply = json.loads(response.read())
            if data is None:
                assert reply["status"] == "ok"
            else:
                assert len(reply["answers"]) == len(json.loads(data)["questions"])


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("make")])
def test_make_targets_exist(command):
    target = command.split()[1] if len(command.split()) > 1 else "help"
    assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M), target


def test_python_api_examples_run(smoke_run, tmp_path, capsys):
    """The Answerer example on the smoke run; the OnnxAnswerer one on its ONNX export."""
    pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    from qa_seq2seq.export import export

    export(smoke_run[0], tmp_path / "onnx", format="onnx")
    blocks = [b for b in blocks_of("python") if "Answerer" in b]
    assert len(blocks) == 2
    for block in blocks:
        exec(block.replace("outputs/toy_lstm/<run>", str(smoke_run[0]))
             .replace("exported/arith-onnx", str(tmp_path / "onnx")), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and all(line.split() for line in printed)
