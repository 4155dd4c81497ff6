"""Every entry point turns a user error into one message, exit status 2, and no traceback."""

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qa_seq2seq.errors import ConfigError, DataError
from qa_seq2seq.train import train
from tests.conftest import compose_train, toy_data_overrides

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python ARGS``, or ``bash SCRIPT`` for a shell script (its Python: this one)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PY": sys.executable}
    program = ["bash"] if args[0].endswith(".sh") else [sys.executable]
    return subprocess.run([*program, *args], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=120)


@pytest.mark.parametrize("command,message", [
    ("-m qa_seq2seq.parameters model/net/sharing=tied_output", "needs model.net.embedding_size (64)"),
    ("-m qa_seq2seq.parameters model.freeze=[nope*]", "model.freeze: pattern(s) ['nope*']"),
    ("-m qa_seq2seq.evaluate ckpt_path=/no/such/run", "/no/such/run: no such checkpoint"),
    ("-m qa_seq2seq.evaluate +experiment=smoke", "evaluate does not read model, run_name, trainer"),
    ("-m qa_seq2seq.decode --checkpoint /no/such", "/no/such: no such checkpoint"),
    pytest.param("-m qa_seq2seq.train model.net.hidden_size=0",
                 "model.net.hidden_size=0 must be an integer >= 1", marks=pytest.mark.slow),
    pytest.param("-m qa_seq2seq.train +optimizer.no_decay=[*embedding*]",
                 "optimizer.no_decay=['*embedding*'] acts on the weight decay, and "
                 "torch.optim.Adam has none", marks=pytest.mark.slow),
    ("scripts/bench_decode.py --checkpoint /no/such", "/no/such: no such checkpoint"),
    ("scripts/bench_decode.py --questions /no/such.jsonl", "--questions /no/such.jsonl: no such file"),
    ("scripts/bench_decode.py --device tpu", "--device tpu: use cpu or cuda[:N]"),
    ("scripts/bench_decode.py --batch-sizes 1,x", "--batch-sizes 1,x: give integers, e.g. 1,64"),
    ("scripts/bench_decode.py --batch-sizes 0,64", "--batch-sizes 0,64: sizes must be at least 1"),
    ("scripts/bench_decode.py --profile -1", "--profile -1: give a number of rows, e.g. 25"),
    pytest.param("scripts/bench_decode.py --device cuda", "--device cuda: torch",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
    ("scripts/bench.py --datasets toy,nope", "--datasets: unknown nope; choose from toy, arith"),
    pytest.param("scripts/gpu_check.sh", "error: no CUDA device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
    ("-m qa_seq2seq.train +experiment=smoke hydra.run.dir=/proc/x",
     "/proc/x: cannot be made (No such file or directory): give hydra.run.dir a folder"),
    ("-m qa_seq2seq.parameters model/init=orthogonal model.init.overrides={decoder.*:orthogonal}",
     "model.init.overrides is a mapping, and '=' only sets the keys it has; to add yours, merged "
     "into it: '++model.init.overrides={decoder.*:orthogonal}'"),
    ("-m qa_seq2seq.train model.nope=1", "unknown key model.nope; the nearest: model.net"),
    ("-m qa_seq2seq.train model.net.hiden_size=64",
     "unknown key model.net.hiden_size; the nearest: model.net.hidden_size"),
    ("-m qa_seq2seq.parameters +model.net.hiden_size=64",  # Hydra's advice to add it, followed
     "unknown key model.net.hiden_size: qa_seq2seq.network.builder.build_network takes no "
     "'hiden_size'; the nearest: model.net.hidden_size"),
    ("-m qa_seq2seq.evaluate decode=beam decode.beam_sise=4",
     "unknown key decode.beam_sise; the nearest: decode.beam_size"),
    ("-m qa_seq2seq.train model.hidden_size=128 model/cell=gru",
     "keys moved under model.net: model.hidden_size -> model.net.hidden_size, "
     "model/cell -> model/net/cell"),
    ("-m qa_seq2seq.evaluate model/net/cell=gru", "Could not override 'model/net/cell'"),
])
@pytest.mark.cli
def test_a_user_error_is_one_message_and_exit_status_2(tmp_path, command, message):
    args = [str(ROOT / a) if a.startswith("scripts/") else a for a in command.split()]
    result = run(*args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert message in output
    assert "Traceback" not in output
    assert output.count("error: ") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
@pytest.mark.cli
def test_fp16_on_the_cpu_is_refused_before_any_data_work(tmp_path):
    result = run("-m", "qa_seq2seq.train", "+experiment=smoke", "trainer.precision=16-mixed",
                 cwd=tmp_path)
    assert result.returncode == 2 and "trainer.precision=16-mixed on the CPU" in result.stdout
    assert not list(tmp_path.rglob("tokenizer.model")) and not (tmp_path / "data").exists()


@pytest.mark.cli
def test_the_plus_plus_a_mapping_is_told_to_take_works_when_followed(tmp_path):
    wrong = run("-m", "qa_seq2seq.parameters", "model/init=orthogonal",
                "model.init.overrides={decoder.*.weight_hh*: glorot_uniform}", cwd=tmp_path)
    followed = re.search(r"'(\+\+[^']+)'", wrong.stderr)[1]
    table = run("-m", "qa_seq2seq.parameters", "model/init=orthogonal", followed, cwd=tmp_path)
    assert table.returncode == 0, table.stderr[-3000:]
    rows = [line.split() for line in table.stdout.splitlines() if "weight_hh" in line]
    assert {(r[0], r[4]) for r in rows} == {("encoder.rnn", "orthogonal"),
                                            ("decoder.rnn", "glorot_uniform")}


@pytest.mark.parametrize("entry", [pytest.param("qa_seq2seq.train", marks=pytest.mark.train),
                                   "qa_seq2seq.parameters"])
@pytest.mark.cli
def test_the_nearest_key_an_unknown_key_is_told_works_when_followed(tmp_path, entry):
    wrong = run("-m", entry, "+experiment=smoke", "model.net.hiden_size=24", cwd=tmp_path)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    nearest = re.search(r"the nearest: ([\w.]+)", wrong.stderr)[1]
    followed = run("-m", entry, "+experiment=smoke", f"{nearest}=24", "trainer.max_steps=2",
                   cwd=tmp_path)
    assert followed.returncode == 0, followed.stderr[-3000:]


@pytest.mark.cli
def test_output_cut_short_by_a_closed_pipe_ends_quietly():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(f"{sys.executable} -m qa_seq2seq.parameters model.net.num_layers=300 | head -1",
                            shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.startswith("scope")
    assert result.stderr == ""


@pytest.mark.parametrize("override,message", [
    ("model.net.cell.dropout=2.0", "model.net.cell.dropout=2.0 must be a probability in [0, 1)"),
    ("model.net.hidden_size=0", "model.net.hidden_size=0 must be an integer >= 1"),
    ("optimizer.lr=-1", "optimizer.lr=-1 must be a number > 0"),
    ("model.net.dropout=1.0", "model.net.dropout=1.0 must be a probability in [0, 1)"),
    ("data.batch_size=0", "data.batch_size=0 must be an integer >= 1"),
    ("label_smoothing=1.5", "label_smoothing=1.5 must be a probability in [0, 1)"),
    ("scheduler=cosine scheduler.warmup_steps=-5", "scheduler.warmup_steps=-5 must be"),
])
def test_out_of_range_values_are_refused_before_any_data_is_read(tmp_path, override, message):
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(tmp_path / "data"),
                         *override.split()], tmp_path / "run")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        train(cfg)
    assert not (tmp_path / "data").exists()  # nothing generated, read or tokenised


@pytest.mark.train
def test_a_validation_interval_longer_than_an_epoch_is_a_config_error(tmp_path):
    # Lightning refuses it only once it knows the number of batches, with a plain ValueError.
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(tmp_path / "data"),
                         "trainer.val_check_interval=100000"], tmp_path / "run")
    with pytest.raises(ConfigError, match=r"trainer: `val_check_interval` \(100000\) must be "
                                          r"less than or equal to the number of the training"):
        train(cfg)


def test_an_empty_training_file_is_named(tmp_path):
    (tmp_path / "train.jsonl").write_text("\n")
    (tmp_path / "val.jsonl").write_text('{"question": "a", "answer": "b"}\n')
    cfg = compose_train(["data=jsonl", f"data.train_file={tmp_path / 'train.jsonl'}",
                         f"data.validation_file={tmp_path / 'val.jsonl'}"], tmp_path / "run")
    with pytest.raises(DataError, match=r"train.jsonl: the file is empty; the train split "
                                        r"\(data.train_file\)"):
        train(cfg)


def test_a_required_key_left_unset_is_named(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"question": "a", "answer": "b"}\n')
    cfg = compose_train(["data=jsonl", f"data.train_file={tmp_path / 'train.jsonl'}"],
                        tmp_path / "run")
    with pytest.raises(ConfigError, match=r"data.validation_file: required, with no default"):
        train(cfg)


@pytest.mark.cli
def test_evaluate_help_shows_only_what_evaluate_reads():
    result = run("-m", "qa_seq2seq.evaluate", "--help")
    assert result.returncode == 0
    assert "decode: greedy | beam | sample" in result.stdout and "ckpt_path: null" in result.stdout
    assert "model/net/cell" not in result.stdout and "optimizer" not in result.stdout


@pytest.mark.cli
def test_train_help_points_to_the_config_reference_and_the_reference_is_current():
    result = run("-m", "qa_seq2seq.train", "--help")
    assert result.returncode == 0 and "conf/README.md" in result.stdout
    assert "model/net/cell: gru, layernorm_lstm, [lstm], peephole_lstm, rnn" in result.stdout
    check = run(str(ROOT / "scripts" / "config_reference.py"), "--check")
    assert check.returncode == 0, check.stderr
    reference = (ROOT / "conf" / "README.md").read_text()
    assert "| `model.net.cell.forget_bias` | `1.0` | added to the forget gate of bias_ih only" \
        in reference
    assert "| `model.net.scopes.encoder` | `encoder` |" in reference


@pytest.mark.cli
def test_train_help_gives_each_key_of_the_chosen_groups_its_meaning():
    """The comments of conf/ beside the composed config: the chosen cell's own keys, the
    experiment's values with the group's meaning, the root file's keys."""
    result = run("-m", "qa_seq2seq.train", "+experiment=passage_qa", "model/net/cell=peephole_lstm",
                 "--help")
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    assert "model/net/cell: gru, layernorm_lstm, lstm, [peephole_lstm], rnn" in shown
    clip = next(line for line in shown.splitlines() if line.strip().startswith("cell_clip:"))
    assert "# " in clip  # peephole_lstm.yaml's comment for it
    assert re.search(r"match_separator: <sep>  # e.g. `<sep>`: mark the pieces", shown)
    assert re.search(r"^seed: 1234  # one seed", shown, re.M)
    wrong = run("-m", "qa_seq2seq.train", "model.nope=1", "--help")
    assert wrong.returncode == 2 and "model.nope" in wrong.stderr and "Traceback" not in wrong.stderr


def test_entry_point_exit_statuses():
    from qa_seq2seq.reporting import entry_point

    def raising(error):
        return entry_point(lambda: (_ for _ in ()).throw(error))

    wrapped = RuntimeError("Error in call to target")  # as Hydra's instantiate wraps it
    wrapped.__cause__ = ConfigError("model.x is wrong")
    for error, status in [(KeyboardInterrupt(), 130), (wrapped, 2), (DataError("line 3"), 2)]:
        with pytest.raises(SystemExit) as info:
            raising(error)()
        assert info.value.code == status
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        raising(ZeroDivisionError())()


@pytest.mark.parametrize("code,fix", [(errno.ENOSPC, "free some space"),
                                      (errno.EROFS, "choose a writable output folder")])
def test_a_refused_write_is_one_message_and_exit_2(caplog, code, fix):
    from qa_seq2seq.reporting import entry_point

    def write():
        try:
            raise OSError(code, os.strerror(code), "outputs/run/metrics.json")
        except OSError as e:
            raise RuntimeError("wrapped by a library") from e

    with pytest.raises(SystemExit) as info:
        entry_point(write)()
    assert info.value.code == 2
    assert caplog.records[-1].getMessage() == (f"error: outputs/run/metrics.json: "
                                               f"{os.strerror(code)}: {fix}" + (
        "" if code == errno.ENOSPC else " (output_dir, hydra.run.dir) or fix its permissions"))
    with pytest.raises(FileNotFoundError):  # another OSError is no refused write
        entry_point(lambda: open("/no/such/file"))()


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only filesystem (a tmpfs mounted ro; root can write anywhere else)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1M", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip("needs a read-only mount (root): " + mounted.stderr.decode().strip())
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.cli
def test_a_read_only_output_folder_is_one_message_and_exit_2(read_only_folder):
    result = run("-m", "qa_seq2seq.train", "+experiment=smoke",
                 f"hydra.run.dir={read_only_folder}/run")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert output.strip() == (f"error: {read_only_folder}/run: Read-only file system: choose a "
                              "writable output folder (output_dir, hydra.run.dir) or fix its "
                              "permissions")
