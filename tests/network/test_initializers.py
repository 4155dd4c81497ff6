"""Initializer statistics against their formulas, per gate block, with per-glob overrides."""

import math

import pytest
import torch
from torch.nn import init as nn_init

from qa_seq2seq.network.initializers import Initializer, fans, init_, variance_scaling_
from qa_seq2seq.network.rnn import LSTM
from tests.conftest import tiny_model


def test_orthogonal_is_per_gate_block():
    torch.manual_seed(0)
    rnn = LSTM(16, 32, forget_bias=1.0)
    Initializer("glorot_uniform", {"*weight_hh*": "orthogonal"})(rnn)
    for gate in ("input", "forget", "cell", "output"):
        block = rnn.gate("weight_hh_l0", gate)  # (32, 32)
        torch.testing.assert_close(block @ block.T, torch.eye(32), atol=1e-5, rtol=0)
    whole = rnn.weight_hh_l0  # (128, 32): not orthogonal as a whole stack, each block is
    assert not torch.allclose(whole.T @ whole, torch.eye(32), atol=1e-3)


def test_truncated_normal_stays_within_two_std():
    torch.manual_seed(0)
    t = init_(torch.empty(200, 200), {"name": "truncated_normal", "mean": 0.5, "std": 0.1})
    assert t.min() >= 0.3 - 1e-6 and t.max() <= 0.7 + 1e-6
    assert abs(t.mean().item() - 0.5) < 0.005


@pytest.mark.parametrize("mode,expected_n", [("fan_in", 300), ("fan_out", 200), ("fan_avg", 250)])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_matches_its_formula(mode, expected_n, distribution):
    torch.manual_seed(0)
    t = variance_scaling_(torch.empty(200, 300), 2.0, mode, distribution)
    assert fans(t) == (300, 200)
    assert t.var().item() == pytest.approx(2.0 / expected_n, rel=0.03)


def test_fans_are_per_gate_block_for_fused_kernels():
    torch.manual_seed(0)
    rnn = LSTM(100, 50)
    Initializer("glorot_uniform")(rnn)
    limit = math.sqrt(6 / (100 + 50))  # one gate: fan_in 100, fan_out 50 (not 200 rows)
    assert rnn.weight_ih_l0.abs().max() <= limit
    assert rnn.weight_ih_l0.abs().max() > 0.9 * limit


def test_uniform_unit_scaling_and_glorot_normal():
    torch.manual_seed(0)
    t = init_(torch.empty(300, 400), {"name": "uniform_unit_scaling", "factor": 2.0})
    assert t.abs().max() <= 2.0 * math.sqrt(3 / 400)
    assert t.var().item() == pytest.approx(4.0 / 400, rel=0.03)
    g = init_(torch.empty(300, 400), "glorot_normal")
    assert g.var().item() == pytest.approx(2 / 700, rel=0.03)


def test_biases_zero_except_forget_gate_exactly_as_configured():
    torch.manual_seed(0)
    model = tiny_model()
    model.decoder.rnn.forget_bias = 2.5
    Initializer("glorot_uniform")(model)
    for rnn, forget in ((model.encoder.rnn, 1.0), (model.decoder.rnn, 2.5)):
        for layer in range(2):
            bias_ih = rnn.get_parameter(f"bias_ih_l{layer}").view(4, -1)
            assert torch.all(bias_ih[1] == forget)
            assert torch.all(bias_ih[[0, 2, 3]] == 0)
            assert torch.all(rnn.get_parameter(f"bias_hh_l{layer}") == 0)
    assert torch.all(model.decoder.output.bias == 0)


def test_overrides_by_glob_last_match_wins_and_plan_reports_it():
    torch.manual_seed(0)
    model = tiny_model()
    plan = Initializer("glorot_uniform", {
        "*embedding*": {"name": "truncated_normal", "std": 0.01},
        "decoder.*": "zeros",
        "decoder.rnn.weight_hh*": "orthogonal",
    })(model)
    assert plan["encoder.embedding.weight"] == "truncated_normal(std=0.01)"
    assert plan["decoder.embedding.weight"] == "zeros"  # decoder.* comes after *embedding*
    assert plan["decoder.rnn.weight_hh_l0"] == "orthogonal"
    assert plan["encoder.rnn.weight_ih_l0"] == "glorot_uniform"
    assert plan["encoder.rnn.bias_hh_l0"] == "zeros"  # the forget bias is not part of the plan
    assert plan["encoder.rnn.bias_ih_l0"] == "zeros"
    assert model.encoder.embedding.weight.abs().max() <= 0.02
    assert torch.all(model.decoder.output.weight == 0)


def test_unknown_pattern_or_name_is_an_error():
    with pytest.raises(ValueError, match="match no parameter"):
        Initializer("glorot_uniform", {"encodr.*": "zeros"})(tiny_model())
    with pytest.raises(ValueError, match="unknown initializer 'glorot'"):
        Initializer("glorot")


def test_reproducible_from_seed_and_different_draws_per_rnn():
    a = tiny_model(seed=3)
    Initializer("glorot_uniform")(a)
    b = tiny_model(seed=3)
    Initializer("glorot_uniform")(b)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    assert not torch.equal(a.encoder.rnn.weight_hh_l1, a.decoder.rnn.weight_hh_l1)


def test_torch_default_keeps_torch_values_but_sets_forget_bias():
    torch.manual_seed(0)
    model = tiny_model()
    model.decoder.rnn.forget_bias = 2.5
    before = {n: p.clone() for n, p in model.named_parameters()}
    plan = Initializer("torch_default")(model)
    assert {v.split(",")[0] for v in plan.values()} == {"torch_default"}
    for name, p in model.named_parameters():
        if "bias" not in name:
            assert torch.equal(p, before[name]), name
    for layer in range(2):
        assert torch.all(model.decoder.rnn.gate(f"bias_ih_l{layer}", "forget") == 2.5)
        assert torch.all(model.decoder.rnn.gate(f"bias_hh_l{layer}", "forget") == 0)
        assert torch.equal(model.decoder.rnn.gate(f"bias_ih_l{layer}", "input"),
                           before[f"decoder.rnn.bias_ih_l{layer}"].view(4, -1)[0])  # torch's draw


@pytest.mark.parametrize("init", ["torch_default", "glorot_uniform", "orthogonal"])
def test_every_lstm_bias_gets_the_forget_bias_in_both_directions(init):
    model = tiny_model(bidirectional_encoder=True, bridge="linear")
    Initializer(init)(model)
    rnns = [model.encoder.rnn, model.decoder.rnn]
    names = [n for rnn in rnns for n in rnn._flat_weights_names if n.startswith("bias")]
    assert any(n.endswith("_reverse") for n in names)  # both directions are covered
    for rnn in rnns:
        for name in rnn._flat_weights_names:
            if name.startswith("bias_ih"):
                assert torch.all(rnn.gate(name, "forget") == rnn.forget_bias), name
            elif name.startswith("bias_hh"):
                assert torch.all(rnn.gate(name, "forget") == 0), name


# Each initializer's defaults and options against the published formula, written out here:
# (spec, variance, bound) for a (300, 400) weight: fan_in 400, fan_out 300.
FORMULAS = [
    ("uniform", 0.05**2 / 3, 0.05),
    ({"name": "uniform", "scale": 0.2}, 0.2**2 / 3, 0.2),
    ("uniform_unit_scaling", 1 / 400, math.sqrt(3 / 400)),  # TF 1.x
    ({"name": "uniform_unit_scaling", "factor": 1.5}, 1.5**2 / 400, 1.5 * math.sqrt(3 / 400)),
    ("variance_scaling", 1 / 400, None),  # TF 2: scale 1, fan_in, truncated normal
    ("glorot_uniform", 2 / 700, math.sqrt(6 / 700)),
    ({"name": "glorot_uniform", "gain": 2.0}, 4 * 2 / 700, 2 * math.sqrt(6 / 700)),
    ("glorot_normal", 2 / 700, None),
    ({"name": "glorot_normal", "gain": 2.0}, 4 * 2 / 700, None),
    ("truncated_normal", (0.05 * 0.87962566103423978) ** 2, 2 * 0.05),
]


@pytest.mark.parametrize("spec, variance, bound", FORMULAS)
def test_each_initializer_matches_its_published_formula(spec, variance, bound):
    torch.manual_seed(0)
    t = init_(torch.empty(300, 400), spec)
    std = math.sqrt(variance)
    assert abs(t.mean().item()) < 0.02 * std  # centred: 120,000 draws put the mean within ~0.003 std
    assert t.var().item() == pytest.approx(variance, rel=0.03)
    if bound is not None:
        assert bound * 0.99 < t.abs().max().item() <= bound + 1e-7


def test_orthogonal_gain_scales_the_singular_values():
    torch.manual_seed(0)
    t = init_(torch.empty(64, 64), {"name": "orthogonal", "gain": 2.0})
    torch.testing.assert_close(t @ t.T, 4.0 * torch.eye(64), atol=1e-4, rtol=0)


def test_fans_of_any_weight_layout_match_torch():
    for shape in ((7,), (5, 3), (4, 3, 2), (6, 2, 3, 5)):
        t = torch.empty(shape)
        expected = (7, 7) if len(shape) == 1 else nn_init._calculate_fan_in_and_fan_out(t)
        assert fans(t) == expected, shape


def test_variance_scaling_refuses_unknown_modes_by_name():
    with pytest.raises(ValueError) as error:
        variance_scaling_(torch.empty(2, 2), mode="fan_max")
    assert str(error.value) == "variance_scaling mode='fan_max': use fan_in, fan_out or fan_avg"
    with pytest.raises(ValueError) as error:
        variance_scaling_(torch.empty(2, 2), distribution="normal")
    assert str(error.value) == ("variance_scaling distribution='normal': use truncated_normal, "
                                "untruncated_normal or uniform")


def test_the_plan_says_which_parameters_keep_their_module_default():
    """Vectors that are not biases (layer-norm gains) keep what their module drew."""
    model = tiny_model("layernorm_lstm")
    plan = Initializer("orthogonal").plan(model)
    assert plan["encoder.rnn.weight_ln_ih_l0"] == "module default"
    assert plan["encoder.rnn.weight_hh_l0"] == "orthogonal"
    assert plan["encoder.rnn.bias_ih_l0"] == "zeros"
    assert set(Initializer("torch_default").plan(model).values()) == {"torch_default"}


def test_an_override_that_matches_nothing_is_named_under_its_key():
    with pytest.raises(ValueError, match=r"^model\.init\.overrides: pattern\(s\) \['decoder\.nothing\*'\]"):
        Initializer(overrides={"decoder.nothing*": "zeros"})(tiny_model())


def test_glorot_normal_is_not_truncated_and_specs_describe_themselves():
    from qa_seq2seq.network.initializers import describe, glorot_normal_

    t = glorot_normal_(torch.empty(400, 400))
    std = math.sqrt(2.0 / 800)
    assert t.abs().max() > 2.5 * std  # a truncated normal stops at 2 standard deviations
    assert describe("orthogonal") == "orthogonal"
    assert describe({"name": "uniform", "scale": 0.1, "seed": 3}) == "uniform(scale=0.1, seed=3)"
    with pytest.raises(ValueError, match=r"unknown initializer None"):
        describe({"scale": 0.1})  # a mapping without a name


def test_constant_and_ones_fill_and_the_initializer_describes_itself():
    assert torch.all(init_(torch.empty(3, 4), {"name": "constant", "value": 0.5}) == 0.5)
    assert torch.all(init_(torch.ones(3, 4), "constant") == 0.0)  # value 0 unless given
    assert torch.all(init_(torch.empty(3, 4), "ones") == 1.0)
    assert repr(Initializer({"name": "uniform", "scale": 0.1}, {"decoder.*": "zeros"})) == (
        "Initializer(default=uniform(scale=0.1), overrides={'decoder.*': 'zeros'})")
