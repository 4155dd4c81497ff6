"""Shared fixtures: tiny models and a tiny tokenizer, built in milliseconds."""

from functools import partial

import pytest
import torch

from qa_seq2seq.model import Seq2Seq
from qa_seq2seq.rnn import GRU, LSTM, RNN, LayerNormLSTM, PeepholeLSTM

CELLS = {"lstm": LSTM, "peephole_lstm": PeepholeLSTM, "layernorm_lstm": LayerNormLSTM,
         "gru": GRU, "rnn": RNN}


def tiny_model(cell="lstm", vocab_size=11, seed=0, **kwargs) -> Seq2Seq:
    torch.manual_seed(seed)
    options = {"embedding_size": 8, "hidden_size": 12, "num_layers": 2, **kwargs}
    return Seq2Seq(vocab_size, partial(CELLS[cell]), **options)


@pytest.fixture
def model():
    return tiny_model().eval()


def random_batch(batch=5, vocab_size=11, max_len=7, seed=0):
    """Right-padded source ids (B, S) with lengths (B,), ids >= 4 (no specials)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (batch,), generator=g)
    lengths[0] = max_len
    src = torch.randint(4, vocab_size, (batch, max_len), generator=g)
    src[torch.arange(max_len)[None, :] >= lengths[:, None]] = 0
    return src, lengths
