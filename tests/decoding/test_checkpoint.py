"""Loading is safe: no code from a checkpoint or stored config runs; errors say what is wrong."""

import os
from pathlib import Path

import pytest
import torch

from qa_seq2seq.decoding.checkpoint import (
    CheckpointError,
    build_model,
    load_model,
    read_checkpoint,
    resolve_checkpoint,
)
from tests.conftest import compose_evaluate


def tampered(run_dir, path, edit):
    """A copy of the run's checkpoint with ``edit(payload)`` applied to its qa_seq2seq entry."""
    ckpt = torch.load(resolve_checkpoint(run_dir), weights_only=True)
    edit(ckpt["qa_seq2seq"])
    torch.save(ckpt, path)
    return path


class Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path, smoke_run):
    run_dir, _ = smoke_run
    marker = tmp_path / "pwned"
    path = tampered(run_dir, tmp_path / "evil.ckpt",
                    lambda payload: payload.update(extra=Exploit(marker)))
    with pytest.raises(CheckpointError, match=r"evil.ckpt: refused to load: it holds Python "
                       r"objects beyond tensors .* Detail: Trying to load unsupported GLOBAL "
                       r"posix.system whose module posix is blocked\.$"):
        read_checkpoint(path)
    assert not marker.exists()


def test_a_refused_pickle_is_quoted_by_what_torch_met_never_by_its_advice(tmp_path, monkeypatch):
    import pickle
    import zipfile

    torch.save({"a": 1}, tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as source, \
            zipfile.ZipFile(tmp_path / "bad.pt", "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = b"\x80\x02\xff" + data[3:]  # an opcode pickle does not have
            target.writestr(item, data)
    with pytest.raises(CheckpointError, match=r"Detail: Unsupported operand 255$"):
        read_checkpoint(tmp_path / "bad.pt")

    def refuse(*args, **kwargs):
        raise pickle.UnpicklingError("one line only")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError, match=r"Detail: one line only$"):
        read_checkpoint(tmp_path / "ok.pt")


def test_a_stored_target_outside_the_registry_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    config = {"_target_": "qa_seq2seq.network.builder.build_network", "vocab_size": 10,
              "cell": {"_target_": "os.system", "_args_": [f"touch {marker}"]}}
    with pytest.raises(CheckpointError) as error:
        build_model(config, "evil.ckpt [network config]")
    assert str(error.value) == (
        "evil.ckpt [network config]: refused _target_ 'os.system' at cell: a stored config is "
        "data, and only qa_seq2seq.network.rnn.GRU, qa_seq2seq.network.rnn.LSTM, "
        "qa_seq2seq.network.rnn.LayerNormLSTM, qa_seq2seq.network.rnn.PeepholeLSTM, "
        "qa_seq2seq.network.rnn.RNN may be built there, so that loading a file cannot run its "
        "author's code")
    assert not marker.exists()


def test_other_files_get_a_one_line_explanation(tmp_path, smoke_run):
    plain = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(plain)
    assert str(error.value) == (f"{plain}: not a qa_seq2seq checkpoint (no 'qa_seq2seq' entry; "
                                "found ['weight']). Use a checkpoint written by qa_seq2seq.train.")
    torch.save({"qa_seq2seq": {}}, plain)  # the payload without weights
    with pytest.raises(CheckpointError, match=r"found \['qa_seq2seq'\]"):
        read_checkpoint(plain)
    torch.save({"state_dict": {}}, plain)  # weights without the payload
    with pytest.raises(CheckpointError, match=r"found \['state_dict'\]"):
        read_checkpoint(plain)
    torch.save([torch.zeros(1)] * 9, plain)
    with pytest.raises(CheckpointError, match=r"no 'qa_seq2seq' entry; found list\)"):
        read_checkpoint(plain)
    torch.save({str(i): i for i in range(10)}, plain)  # at most eight keys are listed
    with pytest.raises(CheckpointError, match=r"found \['0', '1', '2', '3', '4', '5', '6', '7'\]\)"):
        read_checkpoint(plain)
    (tmp_path / "garbage.ckpt").write_bytes(b"not a zip, not a pickle")
    with pytest.raises(CheckpointError, match=r"garbage.ckpt: not a readable torch checkpoint \(.+\)$"):
        read_checkpoint(tmp_path / "garbage.ckpt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.ckpt")
    old = tampered(smoke_run[0], tmp_path / "old.ckpt", lambda payload: payload.update(format=0))
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(old)
    assert str(error.value) == (f"{old}: checkpoint format 0; this version of qa_seq2seq reads "
                                "formats 1 and 2: was it written by a newer qa_seq2seq?")


@pytest.mark.parametrize("payload,weights", [
    ([1], {"net.w": torch.zeros(1)}),  # the payload a list, the weights fine
    ({"format": 2}, [torch.zeros(1)]),  # the weights a list
    ({"format": 2}, {"net.w": 1}),  # a name mapped to a number, not a tensor
    ({"format": 2}, {3: torch.zeros(1)}),  # a tensor under a number, not a name
])
def test_a_payload_or_weights_of_the_wrong_shape_are_refused(tmp_path, payload, weights):
    path = tmp_path / "odd.ckpt"
    torch.save({"qa_seq2seq": payload, "state_dict": weights}, path)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    assert str(error.value) == (f"{path}: not a qa_seq2seq checkpoint (its 'qa_seq2seq' entry "
                                "must be a map, its state_dict names mapped to tensors)")


def test_a_format_2_payload_is_read_as_stored(tmp_path, smoke_run):
    """Only format 1 moves "model" to "net": a format-2 payload keeps any "model" entry apart."""
    path = tampered(smoke_run[0], tmp_path / "v2.ckpt",
                    lambda payload: payload.update(model={"hidden_size": 1}))
    payload = read_checkpoint(path).payload
    assert payload["model"] == {"hidden_size": 1}
    assert payload["net"] == read_checkpoint(smoke_run[0]).payload["net"]


@pytest.mark.parametrize("tokenizer,detail", [
    (None, "found NoneType, not the model's bytes"),
    ("a string", "found str, not the model's bytes"),
])
def test_a_stored_tokenizer_that_is_not_bytes_is_refused(tmp_path, smoke_run, tokenizer, detail):
    path = tampered(smoke_run[0], tmp_path / "tok.ckpt",
                    lambda payload: payload.update(tokenizer=tokenizer))
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert str(error.value) == f"{path}: its tokenizer cannot be read: {detail}"


def test_a_format_1_checkpoint_is_read_as_format_2(tmp_path, smoke_run):
    """Format 1 kept the network config under "model", with init/init_from/freeze beside it."""
    def downgrade(payload):
        payload["model"] = {**payload.pop("net"), "init": None, "init_from": None, "freeze": []}
        payload["format"] = 1

    old = load_model(tampered(smoke_run[0], tmp_path / "v1.ckpt", downgrade))
    new = load_model(smoke_run[0])
    assert old.checkpoint.payload["net"] == new.checkpoint.payload["net"]
    assert old.checkpoint.payload.keys() == new.checkpoint.payload.keys()  # no "model" left
    assert old.checkpoint.raw["qa_seq2seq"]["format"] == 1  # the file as stored
    for (name, a), b in zip(old.model.state_dict().items(), new.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_stored_network_target_is_refused_naming_the_file_and_the_config(tmp_path, smoke_run):
    path = tampered(smoke_run[0], tmp_path / "evil.ckpt",
                    lambda payload: payload["net"].update(_target_="os.system"))
    with pytest.raises(CheckpointError, match=rf"^{path} \[network config\]: refused _target_ "
                                              "'os.system'"):
        load_model(path)


def test_weights_that_do_not_fit_the_config_are_reported(tmp_path, smoke_run):
    path = tampered(smoke_run[0], tmp_path / "mismatch.ckpt",
                    lambda payload: payload["net"].update(hidden_size=48))
    with pytest.raises(CheckpointError, match="do not fit the model.*size mismatch"):
        load_model(path)


def test_a_tokenizer_that_does_not_match_the_model_is_refused(tmp_path, smoke_run):
    from qa_seq2seq.data.tokenizer import Tokenizer

    other = Tokenizer.train(["a completely different corpus"] * 50, vocab_size=30)
    path = tampered(smoke_run[0], tmp_path / "mixed.ckpt",
                    lambda payload: payload.update(tokenizer=other.model_proto))
    with pytest.raises(CheckpointError, match="tokenizer has .* pieces but the model expects"):
        load_model(path)


def test_evaluate_and_inspect_refuse_stored_targets_outside_the_allow_list(tmp_path, smoke_run):
    import shutil

    from omegaconf import OmegaConf

    from qa_seq2seq.evaluate import evaluate
    from qa_seq2seq.parameters import from_checkpoint

    run_dir, _ = smoke_run
    marker = tmp_path / "pwned"
    hostile = {"_target_": "os.system", "_args_": [f"touch {marker}"]}
    # evaluate builds the data module from the checkpoint's data config.
    path = tampered(run_dir, tmp_path / "evil.ckpt",
                    lambda payload: payload["data"].update(generate=hostile))
    with pytest.raises(CheckpointError, match="refused _target_ 'os.system'"):
        evaluate(compose_evaluate(path))
    # parameters reads the initializer from the run's stored .hydra/config.yaml.
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(resolve_checkpoint(run_dir), run / "checkpoints" / "best.ckpt")
    (run / ".hydra").mkdir()
    OmegaConf.save({"model": {"init": hostile}}, run / ".hydra" / "config.yaml")
    with pytest.raises(CheckpointError, match="refused _target_ 'os.system'"):
        from_checkpoint(str(run))
    assert not marker.exists()


def test_a_run_directory_resolves_to_its_best_then_last_checkpoint_then_an_export(
        tmp_path, monkeypatch):
    run = tmp_path / "run"
    order = ["model.ckpt", "last.ckpt", "best.ckpt", "checkpoints/last.ckpt",
             "checkpoints/best.ckpt"]  # each file found wins over those before it
    (run / "checkpoints").mkdir(parents=True)
    for name in order:
        (run / name).touch()
        assert resolve_checkpoint(run) == run / name
        assert resolve_checkpoint(run / name) == run / name  # a file is itself
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(None)
    assert str(error.value) == ("no checkpoints under outputs/: train first (`make train`), or "
                                "pass a checkpoint file or run directory")
    runs = [tmp_path / "outputs/a/1", tmp_path / "outputs/b/2", tmp_path / "outputs/c/3"]
    for i, directory in enumerate((runs[0], runs[2], runs[1])):  # b/2 written last
        (directory / "checkpoints").mkdir(parents=True)
        (directory / "checkpoints/last.ckpt").touch()
        os.utime(directory / "checkpoints/last.ckpt", (1_000 + i, 1_000 + i))
    assert resolve_checkpoint(None) == Path("outputs/b/2/checkpoints/last.ckpt")


def test_a_path_that_holds_no_checkpoint_says_what_it_is(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(tmp_path / "empty")
    assert str(error.value) == (
        f"{tmp_path / 'empty'} is a directory without checkpoints/best.ckpt, checkpoints/last.ckpt "
        "or model.ckpt: is it a qa_seq2seq run directory or export folder?")
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx/step.onnx").touch()
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(tmp_path / "onnx")
    onnx = tmp_path / "onnx"
    assert str(error.value) == (
        f"{onnx} is an ONNX export: only the decoding CLI reads it (qa-seq2seq-decode --model "
        f"{onnx}); other commands need the run or a weights export (python -m qa_seq2seq.export "
        "--format weights)")
    with pytest.raises(CheckpointError) as error:
        resolve_checkpoint(tmp_path / "nowhere")
    assert str(error.value) == f"{tmp_path / 'nowhere'}: no such checkpoint file or run directory"
