"""End to end: train the smoke experiment, then evaluate and decode its run directory."""

import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from qa_seq2seq.decoding.checkpoint import load_model, read_checkpoint
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.evaluate import evaluate
from tests.conftest import compose_evaluate, compose_train, toy_data_overrides


def test_train_writes_a_self_contained_run_directory(smoke_run):
    run_dir, metrics = smoke_run
    for name in ("tokenizer.model", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert {"train/loss", "val/loss", "val/ppl", "val/exact_match"} <= set(metrics)
    ckpt = read_checkpoint(run_dir)
    assert ckpt.path.name == "best.ckpt"
    assert ckpt.payload["net"]["_target_"] == "qa_seq2seq.network.builder.build_network"
    assert ckpt.payload["decode"] == {"_target_": "qa_seq2seq.decoding.search.greedy_search",
                                      "_partial_": True, "max_length": 64,
                                      "max_length_ratio": None, "min_length": 0}
    loaded = load_model(run_dir)
    assert loaded.tokenizer.model_proto == (run_dir / "tokenizer.model").read_bytes()


def test_tensorboard_hparams_hold_the_resolved_config_and_the_metric(smoke_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir, _ = smoke_run
    assert OmegaConf.load(run_dir / "tensorboard" / "hparams.yaml").model.net.hidden_size == 32
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert [m.name.tag for m in experiment.experiment.metric_infos] == ["val/exact_match"]
    assert session.session_start_info.hparams["model/net/hidden_size"].number_value == 32


def test_evaluate_writes_predictions_and_metrics(smoke_run):
    run_dir, _ = smoke_run
    metrics = evaluate(compose_evaluate(run_dir, "decode=beam", "decode.beam_size=3"))
    out = run_dir / "checkpoints" / "eval-test-beam"
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["count"] == 1000
    assert set(rows[0]) == {"question", "gold", "prediction", "score", "correct", "family"}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["exact_match"] == metrics["exact_match"]
    assert "story/exact_match" in metrics
    # What the wrong answers are, and exact match by the gold answer's length, from these rows.
    wrong = [r for r in rows if not r["correct"]]
    kinds = [metrics[f"wrong/{k}"] for k in ("cut", "extended", "other_span", "nowhere")]
    assert wrong and sum(kinds) == pytest.approx(1.0)
    lengths = [k for k in metrics if k.startswith("pieces/") and k.endswith("/count")]
    assert sum(metrics[k] for k in lengths) == 1000 and "story/wrong/cut" in metrics


def test_evaluate_uses_the_search_the_checkpoint_was_validated_with(smoke_run, tmp_path):
    """No decode=: the stored decode config (here beam 3, n_best 2, as if trained with
    decode=beam); decode=greedy overrides it. The stored search's scores are beam's."""
    import shutil

    from tests.decoding.test_checkpoint import tampered

    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run, ignore=shutil.ignore_patterns("eval-*"))
    beam = {"_target_": "qa_seq2seq.decoding.search.beam_search", "_partial_": True, "beam_size": 3,
            "n_best": 2, "max_length": 64}
    tampered(run, run / "checkpoints" / "best.ckpt", lambda payload: payload.update(decode=beam))
    stored = evaluate(compose_evaluate(run, "split=validation"))
    greedy = evaluate(compose_evaluate(run, "split=validation", "decode=greedy"))
    assert (run / "checkpoints" / "eval-validation-beam" / "metrics.json").is_file()
    assert (run / "checkpoints" / "eval-validation-greedy" / "metrics.json").is_file()
    beam_rows, greedy_rows = (
        [json.loads(line) for line in
         (run / "checkpoints" / f"eval-validation-{d}" / "predictions.jsonl").read_text().splitlines()]
        for d in ("beam", "greedy"))
    assert stored["count"] == greedy["count"] == len(beam_rows)
    # Beam 3 finds better-scoring answers than greedy on some questions, and on average.
    assert any(b["score"] > g["score"] + 1e-4 for b, g in zip(beam_rows, greedy_rows))
    assert sum(b["score"] for b in beam_rows) > sum(g["score"] for g in greedy_rows)


@pytest.mark.cli
def test_make_eval_runs_evaluate_on_the_given_run(smoke_run, tmp_path):
    """The README's `make eval CKPT=... SPLIT=... DECODE=...`, through make itself."""
    import shutil
    from pathlib import Path

    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run, ignore=shutil.ignore_patterns("eval-*"))
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(["make", "--no-print-directory", "eval", f"CKPT={run}",
                             "SPLIT=validation", "DECODE=beam", "ARGS=decode.beam_size=2"],
                            cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((run / "checkpoints" / "eval-validation-beam" / "metrics.json").read_text())
    assert saved["split"] == "validation" and saved["decode"] == "beam"
    printed = dict(line.split() for line in result.stdout.splitlines()
                   if line.startswith(("exact_match ", "count ")))
    assert printed == {"exact_match": f"{saved['metrics']['exact_match']:.4f}",
                       "count": str(saved["metrics"]["count"])}


def run_decode(args, stdin: bytes):
    return subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", *args], input=stdin,
                          capture_output=True, timeout=120)


@pytest.mark.cli
def test_decode_cli_answers_every_line_and_reports_bad_ones(smoke_run):
    run_dir, _ = smoke_run
    lines = (b"What is 3 plus 4?\n\n" + b"\xff\xfe bad bytes\n"
             + b'{"question": "Which is larger, 3 or 9?"}\n'
             + b"Where is Mary? " * 70_000 + b"\n"  # a 1 MB line
             + "Wo ist Maria? 日本語 ☃\n".encode())  # characters the tokenizer never saw
    result = run_decode(["--checkpoint", str(run_dir), "--format", "jsonl", "--decode", "beam",
                         "beam_size=2", "n_best=2"], lines)
    assert result.returncode == 0, result.stderr.decode()
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [row["line"] for row in out] == [1, 2, 3, 4, 5, 6]
    errors = {row["line"]: row["error"] for row in out if "error" in row}
    assert set(errors) == {2, 3, 5}
    assert "empty" in errors[2] and "UTF-8" in errors[3] and "tokens" in errors[5]
    texts = [h["answer"] for h in out[0]["n_best"]]  # hypotheses of the same text are merged
    assert 1 <= len(texts) <= 2 and len(set(texts)) == len(texts) and texts[0] == out[0]["answer"]
    assert out[3]["question"] == "Which is larger, 3 or 9?"
    assert "answer" in out[5]  # unknown characters map to <unk>: still answered
    stderr = result.stderr.decode()
    assert "line 2: empty question" in stderr and "line 3: not valid UTF-8" in stderr


@pytest.mark.cli
def test_decode_cli_lines_it_cannot_read_get_an_error_and_the_run_goes_on(smoke_run):
    run_dir, _ = smoke_run
    nested = b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    lines = [b'{"question": "\\ud800 lone"}', nested, b'{"question": ["a list"]}',
             b'{"question": {"a": 1}}', b'{"question": null}', b"What is 3 plus 4?"]
    result = run_decode(["--checkpoint", str(run_dir), "--format", "jsonl"],
                        b"\n".join(lines) + b"\n")
    assert result.returncode == 0, result.stderr.decode()
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    expected = ["field 'question' is not valid Unicode (a lone surrogate at character 0)",
                "invalid JSON (nested too deeply)", "field 'question' is list, not a string",
                "field 'question' is dict, not a string", "field 'question' is missing"]
    for row, error in zip(out, expected):
        assert row["error"].startswith(error), (row, error)
    assert [row["line"] for row in out] == [1, 2, 3, 4, 5, 6]
    assert "answer" in out[-1] and "Traceback" not in result.stderr.decode()


@pytest.mark.cli
def test_decode_cli_text_output_keeps_line_alignment(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    (tmp_path / "q.txt").write_text("What is 3 plus 4?\n\nWhere is Mary?\n")
    result = run_decode(["--checkpoint", str(run_dir / "checkpoints" / "best.ckpt"),
                         "--input", str(tmp_path / "q.txt"), "--output", str(tmp_path / "a.txt")],
                        b"")
    assert result.returncode == 0, result.stderr.decode()
    answers = (tmp_path / "a.txt").read_text().split("\n")
    assert len(answers) == 4 and answers[1] == "" and answers[3] == ""


@pytest.mark.cli
def test_decode_cli_refuses_a_non_checkpoint_cleanly(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all")
    result = run_decode(["--checkpoint", str(tmp_path / "junk.ckpt")], b"hi\n")
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr and b"not a readable torch checkpoint" in result.stderr
    result = run_decode(["--checkpoint", str(tmp_path)], b"hi\n")
    assert b"without checkpoints/best.ckpt, checkpoints/last.ckpt or model.ckpt" in result.stderr
    (tmp_path / "model.ckpt").write_bytes(b"not a checkpoint either")  # an export folder's file
    result = run_decode(["--checkpoint", str(tmp_path)], b"hi\n")
    assert result.returncode == 2 and b"model.ckpt: not a readable torch checkpoint" in result.stderr


@pytest.mark.cli
def test_decode_cli_help_and_bad_options(smoke_run):
    shown = run_decode(["--help"], b"").stdout
    assert b"beam_size=5 n_best=1" in shown and b"temperature=1.0 top_k=0" in shown
    for args, message in (
            (["--decode", "beam", "beam_size=2", "n_best=3"],
             b"error: decode.n_best must be between 1 and beam_size=2, got 3"),
            (["beam_size=2"], b"error: beam_size: not an option of decode=greedy (an option of "
                              b"decode=beam: choose that search with it); its options are "
                              b"max_length, max_length_ratio, min_length"),
            (["--decode", "beam", "--beam-size", "2"],
             b"--beam-size: not an option of this command; a search's options are KEY=VALUE "
             b"after --decode NAME: beam_size=VALUE"),
            (["beam_size"], b"'beam_size': search options are KEY=VALUE"),
            (["max_length=abc"], b"error: max_length='abc': must be an integer (default 64)")):
        result = run_decode(["--checkpoint", str(smoke_run[0]), *args], b"What is 3 plus 4?\n")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert b"Traceback" not in result.stderr and result.stdout == b""
    followed = run_decode(["--checkpoint", str(smoke_run[0]), "--decode", "beam", "beam_size=2"],
                          b"What is 3 plus 4?\n")  # what both messages about beam_size advise
    assert followed.returncode == 0 and followed.stdout.count(b"\n") == 1, followed.stderr  # one answer


@pytest.mark.slow
@pytest.mark.train
def test_toy_experiment_reaches_its_bar(tmp_path):
    """The README's promise: `make train` reaches >= 0.95 exact match on the toy test split."""
    from qa_seq2seq.train import train

    cfg = compose_train(["+experiment=toy_lstm", *toy_data_overrides(tmp_path / "data")],
                        tmp_path / "run")
    train(cfg)
    assert evaluate(compose_evaluate(tmp_path / "run"))["exact_match"] >= 0.95


def test_exposed_trainer_arguments_take_effect(tmp_path, smoke_run, caplog):
    from qa_seq2seq.train import auto_precision, train
    from tests.conftest import compose_train, toy_data_overrides

    data = toy_data_overrides(smoke_run[0].parent / "data")
    cfg = compose_train(["+experiment=smoke", *data, "trainer.max_epochs=2",
                         "trainer.limit_train_batches=4", "trainer.accumulate_grad_batches=2",
                         "trainer.profiler=simple", "trainer.precision=auto"], tmp_path / "run")
    with caplog.at_level("INFO", logger="qa_seq2seq.train"):
        metrics = train(cfg)
    assert metrics["global_step"] == 2 * 4 // 2  # 4 batches an epoch, one update per 2
    assert f"trainer.precision=auto: {auto_precision('auto')}" in caplog.text
    saved = (tmp_path / "run" / "tensorboard").rglob("hparams.yaml")
    assert f"precision: {auto_precision('auto')}" in next(saved).read_text()


@pytest.mark.parametrize("accelerator,cuda,units,expected", [
    ("cpu", False, {"_is_amx_tile_supported"}, "bf16-mixed"),
    ("auto", False, {"_is_avx512_bf16_supported"}, "bf16-mixed"),
    ("auto", False, set(), "32-true"),          # bfloat16 would be emulated
    ("auto", True, {"_is_amx_tile_supported"}, "32-true"),  # trains on the GPU
    ("gpu", False, {"_is_amx_tile_supported"}, "32-true"),
    ("cpu", True, {"_is_amx_tile_supported"}, "bf16-mixed"),
])
def test_auto_precision_is_bf16_only_on_a_cpu_with_bfloat16_units(monkeypatch, accelerator, cuda,
                                                                   units, expected):
    import torch

    from qa_seq2seq.train import auto_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda name=name: name in units)
    assert auto_precision(accelerator) == expected


def test_scheduler_keys_without_a_schedule_are_refused(tmp_path):
    from qa_seq2seq.train import train

    cfg = compose_train(["+experiment=passage_qa", "scheduler=none"], tmp_path)
    with pytest.raises(ConfigError, match=r"^scheduler.warmup_steps set, but scheduler=none "
                                          r"chooses no schedule: .* ~scheduler.warmup_steps$"):
        train(cfg)


@pytest.mark.parametrize("precision", ["16-mixed", "16"])
def test_fp16_mixed_on_the_cpu_is_refused_not_swapped_for_bf16(monkeypatch, precision):
    import torch
    from omegaconf import OmegaConf

    from qa_seq2seq.train import check_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = OmegaConf.create({"_target_": "lightning.pytorch.Trainer", "accelerator": "auto",
                            "precision": precision})
    with pytest.raises(ConfigError, match=rf"^trainer.precision={precision} on the CPU: .* use "
                                          r"trainer.precision=bf16-mixed, 32-true or auto$"):
        check_precision(cfg)


def test_decode_accepts_the_models_own_field_name_and_question(smoke_run):
    from qa_seq2seq.decode import Question, Session, parse_args
    from qa_seq2seq.decoding.answerer import Answerer
    from qa_seq2seq.decoding.checkpoint import load_model

    loaded = load_model(smoke_run[0])
    loaded.checkpoint.payload["data"]["question_field"] = "q"  # trained with data.question_field=q
    answerer = Session(Answerer(loaded), parse_args(["--format", "jsonl"]))
    own, generic, wrong = answerer([Question(1, {"q": "What is 3 plus 4?"}),
                                    Question(2, {"question": "What is 3 plus 4?"}),
                                    Question(3, {"text": "What is 3 plus 4?"})])
    assert own[1][0].text == generic[1][0].text
    assert wrong[1] == "field 'q' is missing; this model reads the field(s) q (or question)"


def test_several_loggers_each_get_the_metrics_and_the_config(smoke_run, tmp_path):
    """CSV and TensorBoard side by side (TensorBoard second: samples still reach it); the CSV
    has every validation's metrics. logger=many composes the same pair."""
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from qa_seq2seq.train import train

    overrides = ["+experiment=smoke", *toy_data_overrides(smoke_run[0].parent / "data"),
                 "trainer.max_epochs=2"]
    many = compose_train([*overrides, "logger=many"], tmp_path / "run")
    assert sorted(many.logger) == ["csv", "tensorboard"]
    cfg = compose_train([*overrides, "logger=[csv,tensorboard]"], tmp_path / "run")
    metrics = train(cfg)
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    validations = [r for r in rows if r.get("val/exact_match")]
    assert len(validations) == 2
    assert float(validations[-1]["val/exact_match"]) == pytest.approx(metrics["val/exact_match"])
    assert OmegaConf.load(tmp_path / "run" / "csv" / "hparams.yaml").model.net.hidden_size == 32
    events = EventAccumulator(str(next((tmp_path / "run" / "tensorboard").glob("events.*"))))
    events.Reload()
    assert "val/samples/text_summary" in events.Tags()["tensors"]


@pytest.mark.cli
def test_make_eval_on_another_file_keeps_the_split_results(smoke_run, tmp_path):
    """The README's `make eval CKPT=<run> ARGS=+data.test_file=...`: results go to
    eval-test-<stem>-<decode>/, and the test split's own results stay as they were."""
    import shutil
    from pathlib import Path

    run = tmp_path / "run"
    shutil.copytree(smoke_run[0], run, ignore=shutil.ignore_patterns("eval-*"))
    root = Path(__file__).resolve().parents[1]
    stored = (smoke_run[0].parent / "data" / "test.jsonl").read_text().splitlines()
    other = tmp_path / "longer.jsonl"
    other.write_text("\n".join(stored[:7]) + "\n")

    def make_eval(*args):
        result = subprocess.run(["make", "--no-print-directory", "eval", f"CKPT={run}",
                                 "DECODE=greedy", *args], cwd=root, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]

    make_eval()
    own = run / "checkpoints" / "eval-test-greedy" / "metrics.json"
    before = own.read_text()
    make_eval(f"ARGS=+data.test_file={other}")
    saved = json.loads((run / "checkpoints" / "eval-test-longer-greedy" / "metrics.json")
                       .read_text())
    assert saved["file"] == str(other) and saved["metrics"]["count"] == 7
    assert own.read_text() == before and json.loads(before)["metrics"]["count"] == len(stored)
