"""The package as a user installs it: a wheel built from the project, installed into a fresh
virtual environment with no source tree on its path, every console script run from an empty
folder (the configs ship inside the wheel)."""

import json
import shutil
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import pytest

from qa_seq2seq import __version__

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.xdist_group("wheel"), pytest.mark.cli]  # one build, one environment
PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The fresh environment's bin/ folder, with the wheel installed. Dependencies come from
    this interpreter's site-packages through a .pth line, which adds the folder but runs none
    of its .pth files (so not the editable install's pointer back to the source tree)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so that the build writes nothing into the checkout
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("qa_seq2seq", "conf"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for file in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / file, source / file)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                    "-q", "-w", str(root / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("qa_seq2seq-*.whl")
    env = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True)
    site = Path(subprocess.run([str(python), "-c", PURELIB], check=True, capture_output=True,
                               text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env / "bin"


def run(bin_dir: Path, command: str, *args: str, cwd: Path, stdin: str | None = None):
    result = subprocess.run([str(bin_dir / command), *args], cwd=cwd, input=stdin,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command} {' '.join(args)}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.train
def test_the_wheel_trains_evaluates_decodes_exports_and_serves_from_an_empty_folder(installed,
                                                                                   tmp_path):
    where = run(installed, "python", "-c", "import qa_seq2seq; print(qa_seq2seq.__file__)",
                cwd=tmp_path).stdout
    assert str(installed.parent) in where and str(ROOT) not in where  # the wheel, not the source
    for command in ("qa-seq2seq-train", "qa-seq2seq-evaluate", "qa-seq2seq-parameters",
                    "qa-seq2seq-export", "qa-seq2seq-decode", "qa-seq2seq-serve",
                    "qa-seq2seq-suggest"):
        assert run(installed, command, "--version", cwd=tmp_path).stdout.split()[-1] == __version__

    run(installed, "qa-seq2seq-train", "+experiment=smoke", cwd=tmp_path)
    (run_dir,) = (tmp_path / "outputs" / "smoke").iterdir()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "data" / "toy" / "train.jsonl").is_file()  # generated where the user is
    scored = run(installed, "qa-seq2seq-evaluate", cwd=tmp_path).stdout
    assert "exact_match" in scored
    answers = run(installed, "qa-seq2seq-decode", "--format", "jsonl", cwd=tmp_path,
                  stdin="Which is larger, 31 or 13?\n").stdout
    assert [json.loads(line)["question"] for line in answers.splitlines()] == \
        ["Which is larger, 31 or 13?"]
    run(installed, "qa-seq2seq-export", "--out", "exported", cwd=tmp_path)
    assert (tmp_path / "exported" / "model.ckpt").is_file()
    assert "encoder.embedding" in run(installed, "qa-seq2seq-parameters", "+experiment=smoke",
                                      cwd=tmp_path).stdout
    suggested = run(installed, "qa-seq2seq-suggest", cwd=tmp_path).stdout  # the toy data here
    assert "python -m qa_seq2seq.train +experiment=toy_lstm" in suggested

    server = subprocess.Popen([str(installed / "qa-seq2seq-serve"), "--model", "exported",
                               "--port", "0"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        assert "serving" in line, line
        url = line.split(" on ", 1)[1].split()[0]
        body = json.dumps({"questions": ["What is 3 plus 4?"]}).encode()
        request = urllib.request.Request(url + "/answer", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert len(json.loads(reply.read())["answers"]) == 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_users_config_folder_adds_an_experiment_beside_the_shipped_ones(installed, tmp_path):
    mine = tmp_path / "my_conf" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text("# @package _global_\ndefaults:\n  - smoke\n  - _self_\n"
                                    "run_name: mine\nmodel:\n  net:\n    hidden_size: 24\n")
    run(installed, "qa-seq2seq-train", "--config-dir", "my_conf", "+experiment=mine", cwd=tmp_path)
    (run_dir,) = (tmp_path / "outputs" / "mine").iterdir()
    stored = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "hidden_size: 24" in stored and "max_train_examples: 256" in stored  # mine over smoke
