"""Weight sharing by identity: one tensor, counted once, changes seen everywhere."""

import io
from functools import partial

import pytest
import torch

from qa_seq2seq.network.attention import Attention
from qa_seq2seq.network.rnn import GRU, LSTM
from qa_seq2seq.network.sharing import Sharing
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
    ({"sharing": Sharing(encoder_decoder=True), "attention": partial(Attention, "dot"),
      "attend_from": "bottom"}, "model.net.attend_from=bottom splits the decoder's in two"),
])
def test_incompatible_sharing_names_keys_and_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**kwargs)


@pytest.mark.parametrize("kwargs,differences", [
    ({"decoder_cell": partial(LSTM, num_layers=1)}, "num_layers: encoder 2 vs decoder 1"),
    ({"bidirectional_encoder": True}, "bidirectional: encoder True vs decoder False"),
    ({"decoder_cell": partial(LSTM, proj_size=4)}, "proj_size: encoder 0 vs decoder 4"),
    ({"decoder_cell": partial(GRU, num_layers=1)},
     "cell: encoder LSTM vs decoder GRU; num_layers: encoder 2 vs decoder 1"),
    ({"feed_encoder_state": True}, "input_size: encoder 8 vs decoder 20"),
])
def test_encoder_decoder_sharing_lists_every_difference_and_the_way_out(kwargs, differences):
    with pytest.raises(ValueError) as error:
        tiny_model(sharing=Sharing(encoder_decoder=True), bridge="linear", **kwargs)
    assert str(error.value) == (
        "model/net/sharing=encoder_decoder runs one RNN on both sides, but they differ: "
        f"{differences}. Use the same model/net/cell for both, "
        "model.net.bidirectional_encoder=false and model.net.feed_encoder_state=false, "
        "or choose another model/net/sharing.")


def test_encoder_decoder_sharing_with_a_split_decoder_says_to_choose_one():
    with pytest.raises(ValueError) as error:
        tiny_model(sharing=Sharing(encoder_decoder=True), attention=partial(Attention, "dot"),
                   attend_from="bottom")
    assert str(error.value) == (
        "model/net/sharing=encoder_decoder runs one RNN on both sides, and "
        "model.net.attend_from=bottom splits the decoder's in two (the layers above the bottom "
        "one read the attention): choose one")


def test_tied_output_names_both_sizes_and_the_setting_that_works():
    with pytest.raises(ValueError) as error:
        tiny_model(sharing=Sharing(tied_output=True))  # embeddings 8, decoder output 12
    assert str(error.value) == (
        "model/net/sharing=tied_output ties the output layer to the embedding, so it needs "
        "model.net.embedding_size (8) equal to the decoder's output size (12: its hidden_size, or "
        "proj_size). Set model.net.embedding_size=12 or choose another model/net/sharing.")
    with pytest.raises(ValueError, match=r"^model/net/sharing=all ties the output layer"):
        tiny_model(sharing=Sharing(embeddings=True, tied_output=True))  # the choice the user made
    assert repr(Sharing(tied_output=True, embeddings=True)) == "Sharing(embeddings, tied_output)"
    assert repr(Sharing()) == "Sharing(none)"


def test_encoder_decoder_sharing_works_for_every_cell():
    for cell in ("gru", "rnn", "peephole_lstm", "layernorm_lstm"):
        model = tiny_model(cell, sharing=Sharing(encoder_decoder=True))
        assert model.decoder.rnn is model.encoder.rnn, cell
