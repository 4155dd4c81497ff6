"""Reusing chosen scopes of a trained run, and freezing them."""

import pytest
import torch

from qa_seq2seq.decoding.checkpoint import build_model, read_checkpoint
from qa_seq2seq.train import train
from qa_seq2seq.training.warm_start import WarmStart
from tests.conftest import compose_train, toy_data_overrides


def fresh_model_like(ckpt, seed=99):
    torch.manual_seed(seed)
    return build_model(ckpt.payload["net"], "test")


def test_copies_exactly_the_chosen_scopes(smoke_run):
    run_dir, _ = smoke_run
    ckpt = read_checkpoint(run_dir)
    model = fresh_model_like(ckpt)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    report = WarmStart(str(run_dir), scopes=["encoder.*"])(model)
    assert {dst for _, dst in report.loaded} == {n for n in before if n.startswith("encoder.")}
    for name, value in model.state_dict().items():
        expected = ckpt.state_dict[name] if name.startswith("encoder.") else before[name]
        assert torch.equal(value, expected), name


def test_rename_loads_one_scope_into_another(smoke_run):
    run_dir, _ = smoke_run
    ckpt = read_checkpoint(run_dir)
    model = fresh_model_like(ckpt)
    WarmStart(str(run_dir), scopes=["decoder.rnn.*"], rename={"decoder.rnn": "encoder.rnn"})(model)
    assert torch.equal(model.encoder.rnn.weight_hh_l0, ckpt.state_dict["decoder.rnn.weight_hh_l0"])


def test_unmatched_pattern_and_shape_mismatch_are_reported(smoke_run):
    run_dir, _ = smoke_run
    ckpt = read_checkpoint(run_dir)
    with pytest.raises(ValueError, match="match no parameter"):
        WarmStart(str(run_dir), scopes=["encodr.*"])(fresh_model_like(ckpt))
    bigger = build_model({**ckpt.payload["net"], "hidden_size": 40}, "test")
    with pytest.raises(ValueError, match="shape-mismatched"):
        WarmStart(str(run_dir), scopes=["encoder.rnn.*"])(bigger)
    report = WarmStart(str(run_dir), scopes=["encoder.*"], strict=False)(bigger)
    assert report.mismatched and ("encoder.embedding.weight", "encoder.embedding.weight") in \
        report.loaded


def test_frozen_warm_started_scope_is_unchanged_after_training(smoke_run, tmp_path):
    run_dir, _ = smoke_run
    source = read_checkpoint(run_dir).state_dict
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(run_dir.parent / "data"),
                         f"model.init_from.checkpoint={run_dir}",
                         "model.init_from.scopes=[encoder.*]", "model.freeze=[encoder.*]"],
                        tmp_path / "run")
    train(cfg)
    trained = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt").state_dict
    for name, value in trained.items():
        if name.startswith("encoder."):
            assert torch.equal(value, source[name]), name
    assert not torch.equal(trained["decoder.rnn.weight_hh_l0"], source["decoder.rnn.weight_hh_l0"])


def test_the_readme_cli_form_of_rename_works_and_rename_without_checkpoint_is_refused(
        smoke_run, tmp_path):
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from qa_seq2seq.errors import ConfigError, user_error

    run_dir, _ = smoke_run
    cfg = compose_train(["+experiment=smoke", f"model.init_from.checkpoint={run_dir}",
                         "model.init_from.scopes=[decoder.rnn.*]",
                         "model.init_from.rename={decoder.rnn: encoder.rnn}"], tmp_path)
    warm = instantiate(cfg.model.init_from)
    assert warm.rename == {"decoder.rnn": "encoder.rnn"}
    cfg = compose_train(["+experiment=smoke", "model.init_from.rename={decoder.rnn: encoder.rnn}"],
                        tmp_path)
    with pytest.raises(InstantiationException) as info:
        instantiate(cfg.model.init_from)
    assert isinstance(user_error(info.value), ConfigError)
    assert "model.init_from.checkpoint is not" in str(user_error(info.value))


def test_named_scopes_reach_globs_checkpoints_and_decoding(smoke_run, tmp_path):
    """A run whose encoder scope is renamed: warm start across the names, init and freeze globs
    on the new name, checkpoint keys under it, and the trained model answers."""
    from qa_seq2seq import Answerer

    run_dir, _ = smoke_run
    source = read_checkpoint(run_dir).state_dict
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(run_dir.parent / "data"),
                         "model.net.scopes.encoder=question_encoder",
                         f"model.init_from.checkpoint={run_dir}",
                         "model.init_from.scopes=[encoder.*]",
                         "model.init_from.rename={encoder: question_encoder}",
                         "model.init.overrides={question_encoder.rnn.weight_hh*: orthogonal}",
                         "model.freeze=[question_encoder.*]"], tmp_path / "run")
    train(cfg)
    trained = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt").state_dict
    assert not any(n.startswith("encoder.") for n in trained)
    for name, value in source.items():
        if name.startswith("encoder."):  # loaded over the initializer, then frozen
            assert torch.equal(trained["question_encoder." + name[len("encoder."):]], value), name
    answers = Answerer.from_checkpoint(tmp_path / "run").answer(["Which is larger, 31 or 13?"])
    assert len(answers) == 1 and isinstance(answers[0].text, str)
