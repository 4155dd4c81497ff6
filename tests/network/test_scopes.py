"""Parameter scopes: globs over names (dots crossed), a glob matching nothing is an error, freezing,
the names of a shared parameter."""

import pytest
import torch

from qa_seq2seq.network.scopes import aliases, freeze_, match, owner_of
from qa_seq2seq.network.sharing import Sharing
from qa_seq2seq.training.module import set_up
from tests.conftest import tiny_model


def test_globs_cross_dots_and_an_unmatched_glob_names_the_key_and_real_names():
    names = [n for n, _ in tiny_model().named_parameters()]
    found = match(names, ["decoder.*.weight_hh*", "*embedding*"], "model.freeze")
    assert found["decoder.*.weight_hh*"] == ["decoder.rnn.weight_hh_l0", "decoder.rnn.weight_hh_l1"]
    assert found["*embedding*"] == ["encoder.embedding.weight", "decoder.embedding.weight"]
    with pytest.raises(ValueError, match=r"model.freeze: pattern\(s\) \['encodr.\*'\] match no "
                                         r"parameter. Parameter names look like: encoder.embedding"):
        match(names, ["encoder.*", "encodr.*"], "model.freeze")


def test_freezing_stops_exactly_the_matched_parameters_from_training():
    model = tiny_model()
    frozen = freeze_(model, ["encoder.rnn.*", "decoder.output.bias"])
    assert frozen == sorted(n for n, _ in model.named_parameters()
                            if n.startswith("encoder.rnn.") or n == "decoder.output.bias")
    before = {n: p.clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    src = torch.randint(4, 11, (3, 5))
    model(src, torch.tensor([5, 3, 2]), src[:, :4]).sum().backward()
    optimizer.step()
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]) == (name in frozen), name


def test_a_shared_parameter_has_all_its_names_and_freezing_one_name_freezes_it():
    model = tiny_model(sharing=Sharing(embeddings=True))
    shared = aliases(model)[id(model.encoder.embedding.weight)]
    assert shared == ["encoder.embedding.weight", "decoder.embedding.weight"]
    set_up(model, freeze=["decoder.embedding.*"])
    assert not model.encoder.embedding.weight.requires_grad
    owner, local = owner_of(model, "decoder.rnn.weight_hh_l1")
    assert owner is model.decoder.rnn and local == "weight_hh_l1"
