"""How the encoder's final state becomes the decoder's first: state, hidden_only, linear, none;
depths and sizes that differ."""

from functools import partial

import pytest
import torch

from qa_seq2seq.network.bridge import Bridge, EncoderState, Side
from qa_seq2seq.network.rnn import GRU, LSTM
from tests.conftest import random_batch, tiny_model


def test_hidden_only_and_state_bridges_differ_exactly_in_c():
    src, lengths = random_batch()
    state = tiny_model(bridge="state").eval()
    hidden_only = tiny_model(bridge="hidden_only").eval()
    hidden_only.load_state_dict(state.state_dict())
    a, b = state.encode(src, lengths).rnn, hidden_only.encode(src, lengths).rnn
    torch.testing.assert_close(a.h, b.h)
    assert torch.all(b.c == 0) and not torch.all(a.c == 0) and b.c.shape == a.c.shape
    encoder_state = state.encoder(src, lengths).state
    torch.testing.assert_close(a.c, encoder_state.c)


def test_none_bridge_starts_from_zeros_and_linear_bridges_any_pair():
    src, lengths = random_batch()
    zero = tiny_model(bridge="none").eval().encode(src, lengths).rnn
    assert torch.all(zero.h == 0) and torch.all(zero.c == 0)
    lstm_to_gru = tiny_model(bridge="linear", decoder_cell=partial(GRU)).eval()
    state = lstm_to_gru.encode(src, lengths).rnn
    assert state.c is None and state.h.shape == (2, 5, 12)


def test_depth_mismatch_aligns_top_layers():
    src, lengths = random_batch()
    deep_encoder = tiny_model(encoder_cell=partial(LSTM, num_layers=3)).eval()
    enc = deep_encoder.encoder(src, lengths).state
    dec = deep_encoder.encode(src, lengths).rnn
    torch.testing.assert_close(dec.h, enc.h[1:])  # the encoder's top two layers
    deep_decoder = tiny_model(decoder_cell=partial(LSTM, num_layers=3)).eval()
    enc = deep_decoder.encoder(src, lengths).state
    dec = deep_decoder.encode(src, lengths).rnn
    torch.testing.assert_close(dec.h[1:], enc.h)  # aligned at the top
    assert torch.all(dec.h[0] == 0)  # the extra bottom layer starts at zero


def test_state_bridge_with_mismatched_sizes_names_the_fix():
    with pytest.raises(ValueError, match="model.net.bridge=linear"):
        tiny_model(bidirectional_encoder=True, bridge="state")
    with pytest.raises(ValueError, match="c size"):
        tiny_model(decoder_cell=partial(GRU), bridge="state")


@pytest.mark.parametrize("encoder_c", [True, False], ids=["lstm_encoder", "gru_encoder"])
def test_linear_bridge_projects_each_layer_by_hand(encoder_c):
    """h_dec = W_h h_enc + b_h and c_dec = W_c c_enc + b_c (from h_enc without an encoder c),
    layer by layer: a 3-layer encoder of size 6 (two directions of 3) into 2 layers of size 4."""
    torch.manual_seed(0)
    bridge = Bridge("linear", Side(3, 6, 6 if encoder_c else None), Side(2, 4, 4))
    h, c = torch.randn(3, 5, 6), torch.randn(3, 5, 6)
    out = bridge(EncoderState(h, c if encoder_c else None))
    c_source = c if encoder_c else h
    for layer in range(2):  # the encoder's top two layers
        torch.testing.assert_close(out.h[layer], h[layer + 1] @ bridge.h.weight.T + bridge.h.bias)
        torch.testing.assert_close(out.c[layer],
                                   c_source[layer + 1] @ bridge.c.weight.T + bridge.c.bias)
    to_gru = Bridge("linear", Side(1, 6, 6), Side(2, 4, None))(EncoderState(h[:1], c[:1]))
    assert to_gru.c is None and torch.all(to_gru.h[0] == 0)  # the extra bottom layer: zeros


def test_hidden_only_to_a_cell_without_c_and_the_bridge_errors():
    h = torch.randn(2, 3, 4)
    state = Bridge("hidden_only", Side(2, 4, 4), Side(2, 4, None))(EncoderState(h, h + 1))
    assert state.c is None and torch.equal(state.h, h)
    zeros = Bridge("none", Side(2, 4, 4), Side(1, 5, None))(EncoderState(h, h))
    assert zeros.c is None and torch.equal(zeros.h, torch.zeros(1, 3, 5))
    with pytest.raises(ValueError) as error:
        Bridge("hidden_only", Side(2, 8, 8), Side(2, 4, 4))
    assert str(error.value) == ("model.net.bridge=hidden_only needs equal h sizes, got encoder 8 "
                                "and decoder 4; use model.net.bridge=linear")
    with pytest.raises(ValueError) as error:
        Bridge("copy", Side(2, 4, 4), Side(2, 4, 4))
    assert str(error.value) == ("model.net.bridge='copy' is not one of "
                                "('state', 'hidden_only', 'linear', 'none')")
    with pytest.raises(ValueError, match=r"differ \(h size 8 vs 4; c size 8 vs None \(None: no "
                                         r"c\); a bidirectional"):
        Bridge("state", Side(2, 8, 8), Side(2, 4, None))


def test_a_bridge_shows_its_mode_and_both_sides():
    assert repr(Bridge("linear", Side(3, 6, 6), Side(2, 4, None))).startswith(
        "Bridge(\n  mode='linear', encoder=(3, 6, 6), decoder=(2, 4, None)")
