"""The match feature (qa_seq2seq.network.matching) against a plain loop, and in the network."""

import pytest
import torch

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.matching import SourceMatch, matches
from tests.conftest import random_batch, tiny_model

PIECES = ["<pad>", "<unk>", "<s>", "</s>", "▁Norzu", "▁lives", "<sep>", "▁in", "▁Sarme", "?", "."]
SEP = PIECES.index("<sep>")


def loop_matches(src, lengths, separator):
    """The definition, one pair at a time."""
    out = torch.zeros(src.shape, dtype=torch.bool)
    for b in range(src.size(0)):
        row = src[b, :lengths[b]].tolist()
        side = [sum(t == separator for t in row[:i + 1]) for i in range(len(row))]
        for i, token in enumerate(row):
            out[b, i] = token != separator and any(
                other == token and side[j] != side[i] for j, other in enumerate(row))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_matches_equals_the_definition(seed):
    src, lengths = random_batch(batch=8, vocab_size=9, max_len=12, seed=seed)  # many repeats
    expected = loop_matches(src, lengths, SEP)
    assert expected.any() and not expected.all()  # the batch tells the cases apart
    assert torch.equal(matches(src, lengths, torch.tensor(SEP), 9), expected)


def test_a_question_name_is_marked_in_the_passage_and_in_the_question():
    tokens = ["▁Norzu", "▁lives", "?", "<sep>", "▁Sarme", "▁in", "▁Norzu", ".", "<pad>"]
    src = torch.tensor([[PIECES.index(t) for t in tokens]])
    got = matches(src, torch.tensor([8]), torch.tensor(SEP), len(PIECES))[0].tolist()
    assert got == [True, False, False, False, False, False, True, False, False]


def test_without_a_separator_nothing_matches():
    src, lengths = random_batch(batch=4, vocab_size=6, max_len=9)  # ids 4, 5: no separator
    assert not matches(src, lengths, torch.tensor(SEP), 6).any()


def test_the_encoder_adds_the_match_embedding_and_the_checkpoint_keeps_the_separator():
    model = tiny_model(match_separator="<sep>").eval()
    model.encoder.match.set_pieces(PIECES)
    assert int(model.state_dict()["encoder.match.separator_id"]) == SEP
    src = torch.tensor([[4, 5, SEP, 8, 4], [4, 5, SEP, 8, 7]])  # 4 on both sides; no match
    lengths = torch.tensor([5, 5])
    with torch.no_grad():
        model.encoder.match.embedding.weight.zero_()  # a match adds what a miss adds
        same = model.encoder(src, lengths).output
        model.encoder.match.embedding.weight[1].fill_(1.0)
        marked = model.encoder(src, lengths).output
    assert torch.allclose(same[1], marked[1])
    assert not torch.allclose(same[0, -1], marked[0, -1])


def test_a_tokenizer_without_the_separator_is_refused_with_what_to_set():
    match = SourceMatch(len(PIECES), 8, "<sep>")
    with pytest.raises(ConfigError, match=r"data.tokenizer.user_defined_symbols"):
        match.set_pieces(PIECES[:6])


@pytest.mark.parametrize("overrides, message", [
    ([], "data.source_template does not contain it"),
    (["data.source_template='{question} <sep> {question}'"], "data.tokenizer.user_defined_symbols"),
])
def test_training_refuses_a_separator_the_source_or_the_tokenizer_lacks(tmp_path, overrides,
                                                                        message):
    from qa_seq2seq.train import train
    from tests.conftest import compose_train, toy_data_overrides

    cfg = compose_train(["+experiment=smoke", "model/net/attention=dot",
                         "model.net.match_separator='<sep>'", *overrides,
                         *toy_data_overrides(tmp_path / "data")], tmp_path / "run")
    with pytest.raises(ConfigError, match=message):
        train(cfg)
