"""How the encoder's final state becomes the decoder's first: state, hidden_only, linear, none;
depths and sizes that differ."""

from functools import partial

import pytest
import torch

from qa_seq2seq.rnn import GRU, LSTM
from tests.conftest import random_batch, tiny_model


def test_hidden_only_and_state_bridges_differ_exactly_in_c():
    src, lengths = random_batch()
    state = tiny_model(bridge="state").eval()
    hidden_only = tiny_model(bridge="hidden_only").eval()
    hidden_only.load_state_dict(state.state_dict())
    a, b = state.encode(src, lengths).rnn, hidden_only.encode(src, lengths).rnn
    torch.testing.assert_close(a.h, b.h)
    assert torch.all(b.c == 0) and not torch.all(a.c == 0)
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
