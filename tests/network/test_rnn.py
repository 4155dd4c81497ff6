"""Recurrent layers against torch's own modules (the trusted reference), with copied weights."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qa_seq2seq.network.rnn import GRU, LSTM, RNN, LayerNormLSTM, PeepholeLSTM, Recurrent, State

B, T, I, H = 4, 7, 5, 6  # noqa: E741  (batch, time, input, hidden)
LENGTHS = torch.tensor([7, 3, 5, 1])


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, I, generator=g)


def copy_into(ours: nn.Module, reference: nn.Module) -> None:
    """Copy the reference's parameters into ours by (shared) name."""
    with torch.no_grad():
        for name, param in reference.named_parameters():
            getattr(ours, name).copy_(param)


def reference_final_state(reference, x, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, hx = reference(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out, hx


CASES = [
    (LSTM, nn.LSTM, {}),
    (LSTM, nn.LSTM, {"proj_size": 3}),
    (PeepholeLSTM, nn.LSTM, {}),
    (PeepholeLSTM, nn.LSTM, {"proj_size": 3}),
    (GRU, nn.GRU, {}),
    (RNN, nn.RNN, {}),
]


@pytest.mark.parametrize("ours_cls,ref_cls,extra", CASES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_loop_matches_torch_forward_and_gradients(ours_cls, ref_cls, extra, bidirectional):
    torch.manual_seed(0)
    reference = ref_cls(I, H, num_layers=2, batch_first=True, bidirectional=bidirectional, **extra)
    ours = ours_cls(I, H, num_layers=2, bidirectional=bidirectional, **extra)
    copy_into(ours, reference)
    x1, x2 = inputs().requires_grad_(), inputs().requires_grad_()
    ref_out, ref_hx = reference_final_state(reference, x1, LENGTHS)
    out = ours.loop(x2, LENGTHS)
    torch.testing.assert_close(out.output, ref_out, atol=1e-5, rtol=1e-5)
    ref_h, ref_c = ref_hx if isinstance(ref_hx, tuple) else (ref_hx, None)
    torch.testing.assert_close(out.state.h, ref_h, atol=1e-5, rtol=1e-5)
    if ref_c is not None:
        torch.testing.assert_close(out.state.c, ref_c, atol=1e-5, rtol=1e-5)
    # Gradients of a loss on every output and on the final state.
    (ref_out.square().sum() + ref_h.sum()).backward()
    (out.output.square().sum() + out.state.h.sum()).backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-5)
    for name, param in reference.named_parameters():
        torch.testing.assert_close(getattr(ours, name).grad, param.grad, atol=1e-5, rtol=1e-5,
                                   msg=name)


@pytest.mark.parametrize("ours_cls,ref_cls,extra", CASES[:1] + CASES[4:])
def test_loop_from_a_given_state_without_biases_matches_torch(ours_cls, ref_cls, extra):
    """Two bidirectional layers without biases, from a random initial (h, c): each of the four
    layer-directions must start from its own row of the state."""
    torch.manual_seed(1)
    reference = ref_cls(I, H, num_layers=2, batch_first=True, bidirectional=True, bias=False)
    ours = ours_cls(I, H, num_layers=2, bidirectional=True, bias=False)
    assert sorted(n for n, _ in ours.named_parameters()) == sorted(
        n for n, _ in reference.named_parameters())
    copy_into(ours, reference)
    h0 = torch.randn(4, B, H)
    hx = (h0, torch.randn(4, B, H)) if ref_cls is nn.LSTM else h0
    packed = nn.utils.rnn.pack_padded_sequence(inputs(), LENGTHS, batch_first=True,
                                               enforce_sorted=False)
    ref_out, ref_hx = reference(packed, hx)
    ref_out, _ = nn.utils.rnn.pad_packed_sequence(ref_out, batch_first=True, total_length=T)
    state = State(*hx) if isinstance(hx, tuple) else State(hx)
    for out in (ours.loop(inputs(), LENGTHS, state), ours(inputs(), LENGTHS, state)):
        torch.testing.assert_close(out.output, ref_out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out.state.h, ref_hx[0] if isinstance(ref_hx, tuple) else ref_hx,
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [LSTM, PeepholeLSTM, LayerNormLSTM, GRU, RNN])
def test_dropout_acts_between_layers_only(cls):
    """No recurrent dropout: two layers differ from run to run in training, one layer does not
    (there is no layer after it), and evaluation equals a model built without dropout."""
    torch.manual_seed(0)
    x = inputs()
    two = cls(I, H, num_layers=2, dropout=0.5).train()
    assert not torch.allclose(two(x, LENGTHS).output, two(x, LENGTHS).output)
    plain = cls(I, H, num_layers=2)
    plain.load_state_dict(two.state_dict())
    torch.testing.assert_close(two.eval()(x, LENGTHS).output, plain.eval()(x, LENGTHS).output)
    with pytest.warns(UserWarning, match="dropout"):  # torch warns, as for nn.LSTM
        one = cls(I, H, num_layers=1, dropout=0.5).train()
    torch.testing.assert_close(one(x, LENGTHS).output, one.eval()(x, LENGTHS).output)


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_fused_path_equals_loop_path(cls):
    torch.manual_seed(0)
    rnn = cls(I, H, num_layers=2)
    x = inputs()
    torch.testing.assert_close(rnn(x, LENGTHS).output, rnn.loop(x, LENGTHS).output,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_cpu_batch_of_mixed_lengths_runs_one_call_per_length_and_equals_torchs_packed_call(
        bidirectional, monkeypatch):
    """24 rows of 3 lengths (8 a length: grouped), from a random initial state: outputs (zeros at
    padding), final states and every gradient as torch's packed call gives them."""
    torch.manual_seed(0)
    rows, lengths = 24, torch.tensor([7, 3, 5] * 8)
    reference = nn.LSTM(I, H, num_layers=2, batch_first=True, bidirectional=bidirectional)
    ours = LSTM(I, H, num_layers=2, bidirectional=bidirectional)
    copy_into(ours, reference)
    calls = []
    monkeypatch.setattr(LSTM, "_kernel", lambda self, x, state: calls.append(x.shape[:2])
                        or Recurrent._kernel(self, x, state))
    directions = 2 if bidirectional else 1
    h0, c0 = torch.randn(2 * directions, rows, H), torch.randn(2 * directions, rows, H)
    x1 = torch.randn(rows, T, I, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    packed = nn.utils.rnn.pack_padded_sequence(x1, lengths, batch_first=True, enforce_sorted=False)
    ref_out, (ref_h, ref_c) = reference(packed, (h0, c0))
    ref_out, _ = nn.utils.rnn.pad_packed_sequence(ref_out, batch_first=True, total_length=T)
    out = ours(x2, lengths, State(h0, c0))
    assert sorted(calls) == [(8, 3), (8, 5), (8, 7)]
    torch.testing.assert_close(out.output, ref_out, atol=1e-5, rtol=1e-5)
    assert torch.all(out.output[lengths == 3][:, 3:] == 0)
    torch.testing.assert_close(out.state.h, ref_h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.state.c, ref_c, atol=1e-5, rtol=1e-5)
    (ref_out.square().sum() + ref_h.sum() + ref_c.square().sum()).backward()
    (out.output.square().sum() + out.state.h.sum() + out.state.c.square().sum()).backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-5)
    for name, param in reference.named_parameters():
        torch.testing.assert_close(getattr(ours, name).grad, param.grad, atol=1e-5, rtol=1e-5,
                                   msg=name)


def test_lengths_are_grouped_only_for_a_projection_free_lstm_with_enough_rows_a_length():
    x = torch.zeros(16, T, I)
    two_lengths, three_lengths = torch.tensor([7, 3] * 8), torch.tensor([7, 3, 5, 5] * 4)
    assert LSTM(I, H)._groups_lengths(x, two_lengths)  # 8 rows a length
    assert not LSTM(I, H)._groups_lengths(x, three_lengths)  # 4-8 rows: fewer than 8 on average
    assert not LSTM(I, H, proj_size=3)._groups_lengths(x, two_lengths)  # no oneDNN kernel
    assert not GRU(I, H)._groups_lengths(x, two_lengths)  # no oneDNN kernel: packing is faster


def test_lstm_cell_step_matches_lstmcell_with_initial_state():
    torch.manual_seed(0)
    cell = nn.LSTMCell(I, H)
    ours = LSTM(I, H)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ours, name + "_l0").copy_(getattr(cell, name))
    x = inputs()[:, :1]
    h0, c0 = torch.randn(B, H), torch.randn(B, H)
    h, c = cell(x[:, 0], (h0, c0))
    out = ours.loop(x, None, State(h0[None], c0[None]))
    torch.testing.assert_close(out.state.h[0], h, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.state.c[0], c, atol=1e-6, rtol=1e-5)


def test_fused_lstm_checkpoint_loads_into_peephole_lstm_with_same_outputs():
    torch.manual_seed(0)
    fused = LSTM(I, H, num_layers=2)
    peephole = PeepholeLSTM(I, H, num_layers=2)
    result = peephole.load_state_dict(fused.state_dict(), strict=False)
    assert sorted(result.missing_keys) == ["weight_peephole_l0", "weight_peephole_l1"]
    assert not result.unexpected_keys
    x = inputs()
    expected, actual = fused(x, LENGTHS), peephole(x, LENGTHS)
    torch.testing.assert_close(actual.output, expected.output, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(actual.state.c, expected.state.c, atol=1e-5, rtol=1e-5)


def test_peephole_and_cell_clip_change_the_result():
    torch.manual_seed(0)
    rnn = PeepholeLSTM(I, H, cell_clip=0.1)
    out = rnn(inputs() * 10)
    assert out.state.c.abs().max() <= 0.1 + 1e-7
    before = rnn(inputs()).output
    with torch.no_grad():
        rnn.gate("weight_peephole_l0", "forget").fill_(2.0)
    assert not torch.allclose(rnn(inputs()).output, before)


def layernorm_lstm_reference(rnn: LayerNormLSTM, x: torch.Tensor) -> torch.Tensor:
    """A direct per-step transcription of the layer-norm LSTM equations (one layer)."""
    h = x.new_zeros(x.size(0), H)
    c = x.new_zeros(x.size(0), H)

    def norm(v, gain):  # per gate block
        return torch.cat([F.layer_norm(block, (H,)) for block in v.split(H, -1)], -1) * gain

    outs = []
    for t in range(x.size(1)):
        gates = (norm(x[:, t] @ rnn.weight_ih_l0.T, rnn.weight_ln_ih_l0)
                 + norm(h @ rnn.weight_hh_l0.T, rnn.weight_ln_hh_l0)
                 + rnn.bias_ih_l0 + rnn.bias_hh_l0)
        i, f, g, o = gates.split(H, -1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * F.layer_norm(c, (H,), rnn.weight_ln_c_l0, rnn.bias_ln_c_l0).tanh()
        outs.append(h)
    return torch.stack(outs, 1)


def test_layernorm_lstm_matches_the_equations_and_respects_lengths():
    torch.manual_seed(0)
    rnn = LayerNormLSTM(I, H)
    with torch.no_grad():  # non-trivial gains so that they are exercised
        for name, p in rnn.named_parameters():
            if "ln" in name:
                p.uniform_(0.5, 1.5)
    x = inputs()
    torch.testing.assert_close(rnn(x).output, layernorm_lstm_reference(rnn, x),
                               atol=1e-5, rtol=1e-5)
    # Each sequence alone, unpadded, gives the same final state as in the padded batch.
    batched = rnn(x, LENGTHS).state.h[0]
    for b, n in enumerate(LENGTHS.tolist()):
        alone = rnn(x[b : b + 1, :n]).state.h[0, 0]
        torch.testing.assert_close(batched[b], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [LSTM, PeepholeLSTM, LayerNormLSTM, GRU, RNN])
def test_dropout_and_recurrent_dropout_active_in_training_only(cls):
    torch.manual_seed(0)
    rnn = cls(I, H, num_layers=2, dropout=0.3, recurrent_dropout=0.3)
    x = inputs()
    rnn.eval()
    torch.testing.assert_close(rnn(x, LENGTHS).output, rnn(x, LENGTHS).output)
    rnn.train()
    assert not torch.allclose(rnn(x, LENGTHS).output, rnn(x, LENGTHS).output)


@pytest.mark.parametrize("cls", [LSTM, PeepholeLSTM, LayerNormLSTM, GRU, RNN])
def test_recurrent_dropout_alone_changes_training_outputs_of_every_cell(cls):
    # One layer, so no dropout between layers: any difference comes from the recurrent masks.
    torch.manual_seed(0)
    rnn = cls(I, H, recurrent_dropout=0.5).train()
    x = inputs()
    first, second = rnn(x, LENGTHS).output, rnn(x, LENGTHS).output
    assert not torch.allclose(first, second)
    torch.testing.assert_close(first[:, 0], second[:, 0])  # the first step reads no h yet
    rnn.recurrent_dropout = 0.0
    torch.testing.assert_close(rnn(x, LENGTHS).output, rnn.eval()(x, LENGTHS).output)


def test_recurrent_dropout_alone_uses_one_mask_per_sequence():
    """Variational: the same units of h are dropped at every step of a sequence."""
    torch.manual_seed(0)
    rnn = RNN(I, H, recurrent_dropout=0.5).train()
    with torch.no_grad():
        rnn.weight_ih_l0.zero_()
        rnn.bias_ih_l0.fill_(0.5)
        rnn.bias_hh_l0.zero_()
        rnn.weight_hh_l0.copy_(torch.eye(H))  # h' = tanh(0.5 + mask * h)
    out = rnn(inputs()).output  # (B, T, H)
    grows = out[:, -1] > out[:, 0] + 1e-3  # units whose recurrence was kept keep growing
    stays = (out[:, -1] - out[:, 0]).abs() < 1e-6  # units dropped at every step stay tanh(0.5)
    assert bool((grows | stays).all()) and bool(grows.any()) and bool(stays.any())


def test_forget_bias_goes_into_bias_ih_only():
    rnn = LSTM(I, H, num_layers=2, forget_bias=1.5)
    for layer in range(2):
        assert torch.all(rnn.gate(f"bias_ih_l{layer}", "forget") == 1.5)
        assert torch.all(rnn.gate(f"bias_hh_l{layer}", "forget") == 0.0)
    # Effective forget bias is exactly 1.5 (not 3.0) — torch adds the two bias vectors.
    total = rnn.bias_ih_l0 + rnn.bias_hh_l0
    assert torch.all(total.view(4, H)[1] == 1.5)


def test_gate_views_are_writable_views_of_the_fused_kernel():
    rnn = LSTM(I, H)
    view = rnn.gate("weight_hh_l0", "output")
    assert view.shape == (H, H)
    with torch.no_grad():
        view.fill_(7.0)
    assert torch.all(rnn.weight_hh_l0[3 * H :] == 7.0)
    assert not torch.any(rnn.weight_hh_l0[: 3 * H] == 7.0)
    with pytest.raises(KeyError, match="no gate"):
        rnn.gate("weight_hh_l0", "reset")
    assert GRU(I, H).gate("weight_ih_l0", "new").shape == (H, I)


def test_names_and_repr():
    rnn = LSTM(I, H, name="encoder", recurrent_dropout=0.1)
    text = repr(rnn)
    assert "name='encoder'" in text and "recurrent_dropout=0.1" in text
    assert [n for n, _ in rnn.named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]


@pytest.mark.parametrize("cls", [LSTM, PeepholeLSTM, LayerNormLSTM, GRU, RNN])
def test_weights_are_drawn_once_as_torch_draws_them(cls):
    """From the same seed, every tensor torch's module has is torch's own draw (not a second
    one), except the forget rows of the biases: forget_bias in bias_ih, 0 in bias_hh."""
    reference_cls = {GRU: nn.GRU, RNN: nn.RNN}.get(cls, nn.LSTM)
    torch.manual_seed(0)
    ours = cls(I, H, num_layers=2, bidirectional=True)
    torch.manual_seed(0)
    reference = reference_cls(I, H, num_layers=2, bidirectional=True, batch_first=True)
    for name, expected in reference.named_parameters():
        actual = getattr(ours, name).detach().clone()
        if ours.has_cell_state and name.startswith("bias"):
            forget = slice(H, 2 * H)
            assert torch.all(actual[forget] == (1.0 if name.startswith("bias_ih") else 0.0)), name
            actual[forget] = expected[forget]
        assert torch.equal(actual, expected), name


@pytest.mark.parametrize("name, cls", [("lstm", LSTM), ("peephole_lstm", PeepholeLSTM),
                                       ("layernorm_lstm", LayerNormLSTM), ("gru", GRU),
                                       ("rnn", RNN)])
def test_built_from_sizes_alone_a_cell_has_torchs_defaults_and_its_own_name(name, cls):
    rnn = cls(I, H)
    assert (rnn.name, rnn.num_layers, rnn.bias, rnn.dropout, rnn.bidirectional) == (
        name, 1, True, 0.0, False)
    assert rnn.batch_first  # what every cell reads, whichever path runs it
    assert rnn.recurrent_dropout == 0.0
    assert rnn.forget_bias == (1.0 if rnn.has_cell_state else 0.0)
    if rnn.has_cell_state:
        assert torch.all(rnn.gate("bias_ih_l0", "forget") == 1.0)


@pytest.mark.parametrize("cls", [PeepholeLSTM, LayerNormLSTM])
def test_custom_cells_without_biases_have_none_and_honour_every_option(cls):
    torch.manual_seed(0)
    rnn = cls(I, H, num_layers=2, bias=False, bidirectional=True, dropout=0.5)
    names = [n for n, _ in rnn.named_parameters()]
    assert not [n for n in names if n.startswith(("bias_ih", "bias_hh"))], names
    assert rnn.num_directions == 2 and rnn.dropout == 0.5
    out = rnn.eval()(inputs(), LENGTHS)
    assert out.output.shape == (B, T, 2 * H) and out.state.h.shape == (4, B, H)
    if cls is PeepholeLSTM:  # zero peepholes: torch's bias-free LSTM, weights copied
        reference = nn.LSTM(I, H, num_layers=2, bias=False, bidirectional=True, batch_first=True)
        copy_into(rnn, reference)
        ref_out, _ = reference_final_state(reference, inputs(), LENGTHS)
        torch.testing.assert_close(rnn(inputs(), LENGTHS).output, ref_out, atol=1e-5, rtol=1e-5)


def test_peephole_lstm_matches_its_equations_step_by_step():
    """Gers & Schmidhuber / Sak et al. (2014), transcribed for one layer:
    i = s(W_i x + U_i h + b_i + p_i c), f = s(W_f x + U_f h + b_f + p_f c), g = tanh(...),
    c' = f c + i g, o = s(W_o x + U_o h + b_o + p_o c'), h' = o tanh(c')."""
    torch.manual_seed(3)
    rnn = PeepholeLSTM(I, H)
    with torch.no_grad():
        rnn.weight_peephole_l0.uniform_(-1, 1)
    x = inputs()
    h, c = torch.zeros(B, H), torch.zeros(B, H)
    p_i, p_f, p_o = rnn.weight_peephole_l0.detach().chunk(3)
    w_ih, w_hh = rnn.weight_ih_l0.detach(), rnn.weight_hh_l0.detach()
    bias = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach()
    expected = []
    for t in range(T):
        i, f, g, o = (x[:, t] @ w_ih.T + h @ w_hh.T + bias).chunk(4, 1)
        i, f = torch.sigmoid(i + p_i * c), torch.sigmoid(f + p_f * c)
        c = f * c + i * torch.tanh(g)
        h = torch.sigmoid(o + p_o * c) * torch.tanh(c)
        expected.append(h)
    out = rnn(x)
    torch.testing.assert_close(out.output, torch.stack(expected, 1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.state.c[0], c, atol=1e-5, rtol=1e-5)


def test_fused_path_pads_to_the_input_length_when_every_row_is_shorter():
    rnn = LSTM(I, H)
    out = rnn(inputs(), torch.tensor([3, 2, 3, 1]))
    assert out.output.shape == (B, T, H) and torch.all(out.output[:, 3:] == 0)


def test_recurrent_dropout_must_leave_something_and_gate_views_cover_the_norm_gains():
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError) as error:
            LSTM(I, H, recurrent_dropout=bad)
        assert str(error.value) == f"recurrent_dropout must be in [0, 1), got {bad}"
    rnn = LayerNormLSTM(I, H)
    assert rnn.gate_names("weight_ln_ih_l0") == rnn.gate_names("weight_ln_hh_l0") == (
        "input", "forget", "cell", "output")
    assert rnn.gate_names("weight_ln_c_l0") is None
    assert repr(LSTM(I, H, name="encoder", recurrent_dropout=0.1)) == (
        "LSTM(name='encoder', 5, 6, batch_first=True, recurrent_dropout=0.1, forget_bias=1.0)")


def test_reset_parameters_redraws_the_weights_and_keeps_the_forget_bias():
    rnn = LSTM(I, H, forget_bias=2.0)
    before = rnn.weight_hh_l0.detach().clone()
    rnn.reset_parameters()
    assert not torch.equal(rnn.weight_hh_l0, before)
    assert torch.all(rnn.gate("bias_ih_l0", "forget") == 2.0)
    assert torch.all(rnn.gate("bias_hh_l0", "forget") == 0.0)


@pytest.mark.parametrize("cls", [LSTM, PeepholeLSTM, LayerNormLSTM, GRU, RNN])
def test_recurrent_dropout_scales_the_kept_units_by_one_over_keep(cls, monkeypatch):
    """With a mask that keeps every unit, training reads h / keep: the same as evaluation with
    the recurrent kernel divided by keep (inverted dropout keeps the expectation)."""
    torch.manual_seed(0)
    rnn = cls(I, H, recurrent_dropout=0.5)
    scaled = cls(I, H)
    scaled.load_state_dict(rnn.state_dict())
    with torch.no_grad():
        scaled.weight_hh_l0.div_(0.5)
    monkeypatch.setattr(torch, "bernoulli", torch.ones_like)
    torch.testing.assert_close(rnn.train()(inputs(), LENGTHS).output,
                               scaled.eval()(inputs(), LENGTHS).output, atol=1e-5, rtol=1e-5)


def test_a_peephole_lstm_shows_its_cell_clip_only_when_set():
    assert repr(PeepholeLSTM(I, H, cell_clip=3.0)).endswith(", forget_bias=1.0, cell_clip=3.0)")
    assert repr(PeepholeLSTM(I, H)).endswith(", forget_bias=1.0)")


@pytest.mark.cli  # torch.compile starts Python processes to compile the step
@pytest.mark.parametrize("cls", [PeepholeLSTM, LayerNormLSTM])
def test_a_compiled_step_gives_the_eager_outputs_and_gradients(cls):
    """``model.compile``: the loop path's step through torch.compile, against the same layer
    run eagerly (forward and backward, mixed lengths, two batch sizes on one compiled graph)."""
    torch.manual_seed(0)
    eager, compiled = cls(I, H, num_layers=2), cls(I, H, num_layers=2)
    compiled.load_state_dict(eager.state_dict())
    compiled.compiled = True
    counters = torch._dynamo.utils.counters
    counters.clear()
    for rows in (B, B - 1):
        x1, x2 = inputs()[:rows].requires_grad_(), inputs()[:rows].requires_grad_()
        want, got = eager(x1, LENGTHS[:rows]), compiled(x2, LENGTHS[:rows])
        torch.testing.assert_close(got.output, want.output, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got.state.c, want.state.c, atol=1e-5, rtol=1e-5)
        (want.output.square().sum() + want.state.h.sum()).backward()
        (got.output.square().sum() + got.state.h.sum()).backward()
        torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-5)
    assert counters["stats"]["unique_graphs"] >= 1  # the step did run compiled
    for name, param in eager.named_parameters():
        torch.testing.assert_close(getattr(compiled, name).grad, param.grad, atol=1e-5,
                                   rtol=1e-5, msg=name)
    assert "compiled" not in str(compiled.state_dict().keys())  # not part of the model


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_bf16_autocast_on_a_cpu_without_bf16_units_reads_through_the_loop(cls, monkeypatch):
    """oneDNN builds no fused bf16 kernel there (it raised at the first validation step of
    ``trainer.precision=bf16-mixed``): the loop runs the same layer, its matmuls in bf16."""
    import qa_seq2seq.network.rnn as rnn

    monkeypatch.setattr(rnn, "_cpu_has_bf16_units", lambda: False)
    layer = cls(5, 6, num_layers=2).eval()
    x = torch.randn(4, 7, 5)
    want = layer(x, LENGTHS)
    loops = []
    monkeypatch.setattr(layer, "loop", lambda *a, **k: loops.append(1) or cls.loop(layer, *a, **k))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(x, LENGTHS)
    assert loops and got.output.dtype in (torch.bfloat16, torch.float32)
    torch.testing.assert_close(got.output.float(), want.output, atol=0.05, rtol=0.05)
