"""Weight sharing by identity: one tensor, counted once, changes seen everywhere."""

import io
from functools import partial

import pytest
import torch

from qa_seq2seq.rnn import GRU, LSTM
from qa_seq2seq.sharing import Sharing
from tests.conftest import tiny_model


def unique_count(model):
    return sum(p.numel() for p in model.parameters())


def test_embeddings_shared_by_identity_and_counted_once():
    plain, shared = tiny_model(), tiny_model(sharing=Sharing(embeddings=True))
    assert shared.encoder.embedding.weight is shared.decoder.embedding.weight
    with torch.no_grad():
        shared.encoder.embedding.weight.fill_(0.25)
    assert torch.all(shared.decoder.embedding.weight == 0.25)
    assert unique_count(plain) - unique_count(shared) == 11 * 8
    optimizer = torch.optim.Adam(shared.parameters())
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == unique_count(shared)


def test_tied_output_uses_the_decoder_embedding():
    model = tiny_model(embedding_size=12, sharing=Sharing(tied_output=True))
    assert model.decoder.output.weight is model.decoder.embedding.weight
    with torch.no_grad():
        model.decoder.output.weight.fill_(-1.0)
    assert torch.all(model.decoder.embedding.weight == -1.0)


def test_all_ties_three_ways_and_checkpoint_stores_the_tensor_once():
    model = tiny_model(embedding_size=12, sharing=Sharing(embeddings=True, tied_output=True))
    w = model.encoder.embedding.weight
    assert model.decoder.embedding.weight is w and model.decoder.output.weight is w
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    ptrs = {loaded[k].untyped_storage().data_ptr() for k in
            ("encoder.embedding.weight", "decoder.embedding.weight", "decoder.output.weight")}
    assert len(ptrs) == 1


def test_encoder_decoder_share_one_rnn():
    model = tiny_model(sharing=Sharing(encoder_decoder=True))
    assert model.decoder.rnn is model.encoder.rnn
    with torch.no_grad():
        model.encoder.rnn.weight_hh_l0.zero_()
    assert torch.all(model.decoder.rnn.weight_hh_l0 == 0)


@pytest.mark.parametrize("kwargs,message", [
    ({"sharing": Sharing(tied_output=True)}, "model.net.embedding_size"),
    ({"sharing": Sharing(encoder_decoder=True), "decoder_cell": partial(GRU), "bridge": "linear"},
     "cell: encoder LSTM vs decoder GRU"),
    ({"sharing": Sharing(encoder_decoder=True), "feed_encoder_state": True}, "input_size"),
    ({"sharing": Sharing(encoder_decoder=True), "decoder_cell": partial(LSTM, hidden_size=6),
      "bridge": "linear"}, "hidden_size: encoder 12 vs decoder 6"),
])
def test_incompatible_sharing_names_keys_and_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**kwargs)
