"""Every model/cell (per side) x model/sharing x model.bridge: valid ones train, others explain."""

import itertools
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from qa_seq2seq.attention import Attention
from qa_seq2seq.model import Seq2Seq
from qa_seq2seq.sharing import Sharing
from tests.conftest import CELLS, random_batch

SHARINGS = {"none": {}, "embeddings": {"embeddings": True}, "tied_output": {"tied_output": True},
            "all": {"embeddings": True, "tied_output": True},
            "encoder_decoder": {"encoder_decoder": True}}
BRIDGES = ["state", "hidden_only", "linear", "none"]
HAS_C = {"lstm": True, "peephole_lstm": True, "layernorm_lstm": True, "gru": False, "rnn": False}
COMBOS = list(itertools.product(CELLS, CELLS, SHARINGS, BRIDGES))


def expected_error(enc, dec, sharing, bridge):
    """The independent rule: what must fail, and with which key named (bridge is checked first)."""
    if bridge == "state" and HAS_C[enc] != HAS_C[dec]:
        return "model.bridge=state"
    if sharing == "encoder_decoder" and enc != dec:
        return "model/sharing=encoder_decoder"
    return None


@pytest.mark.parametrize("enc,dec,sharing,bridge", COMBOS,
                         ids=["-".join(c) for c in COMBOS])
def test_combination(enc, dec, sharing, bridge):
    torch.manual_seed(0)
    build = partial(Seq2Seq, 9, partial(CELLS[enc]), embedding_size=8, hidden_size=8, num_layers=1,
                    decoder_cell=partial(CELLS[dec]), bridge=bridge,
                    sharing=Sharing(**SHARINGS[sharing]))
    error = expected_error(enc, dec, sharing, bridge)
    if error:
        with pytest.raises(ValueError, match=error):
            build()
        return
    model = build()
    src, lengths = random_batch(batch=3, vocab_size=9, max_len=4)
    tgt = torch.randint(4, 9, (3, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.clone() for p in model.parameters()]
    loss = F.cross_entropy(model(src, lengths, tgt).flatten(0, 1), tgt.flatten())
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()) if b.grad is not None)


DECODER_OPTIONS = {
    "dot": {"attention": partial(Attention, "dot")},
    "general+feeding": {"attention": partial(Attention, "general"), "input_feeding": True},
    "bahdanau+thinking": {"attention": partial(Attention, "bahdanau"), "thinking_steps": 2},
}
ATTENTION_COMBOS = list(itertools.product(CELLS, SHARINGS, DECODER_OPTIONS))


@pytest.mark.parametrize("cell,sharing,options", ATTENTION_COMBOS,
                         ids=["-".join(c) for c in ATTENTION_COMBOS])
def test_attention_composes_with_every_cell_and_sharing(cell, sharing, options):
    torch.manual_seed(0)
    build = partial(Seq2Seq, 9, partial(CELLS[cell]), embedding_size=8, hidden_size=8,
                    num_layers=1, sharing=Sharing(**SHARINGS[sharing]), **DECODER_OPTIONS[options])
    if sharing == "encoder_decoder" and options == "general+feeding":
        # The fed decoder reads [embedding; attentional vector]: not the encoder's input size.
        with pytest.raises(ValueError, match="model/sharing=encoder_decoder.*input_size"):
            build()
        return
    model = build()
    src, lengths = random_batch(batch=3, vocab_size=9, max_len=4)
    tgt = torch.randint(4, 9, (3, 3))
    loss = F.cross_entropy(model(src, lengths, tgt).flatten(0, 1), tgt.flatten())
    loss.backward()
    assert torch.isfinite(loss)
    attention = model.decoder.attention
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attention.parameters())
