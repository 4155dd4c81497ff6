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


def loop_question_words(src, lengths, separator, pieces):
    """The definition of question_words, one position at a time."""
    out = torch.full(src.shape, -1)
    for b in range(src.size(0)):
        row = src[b, :lengths[b]].tolist()
        if separator not in row:
            continue
        question = row[:row.index(separator)]
        words = [max(sum(pieces[t].startswith("▁") for t in question[:i + 1]) - 1, 0)
                 for i in range(len(question))]
        out[b, :len(question)] = torch.tensor(words)
        for i in range(len(question) + 1, len(row)):
            if row[i] != separator and row[i] in question:
                out[b, i] = words[question.index(row[i])]
    return out


@pytest.mark.parametrize("seed", range(4))
def test_question_words_equal_the_definition(seed):
    from qa_seq2seq.network.matching import question_words

    g = torch.Generator().manual_seed(seed)
    others = torch.tensor([i for i in range(4, len(PIECES)) if i != SEP])
    src = others[torch.randint(len(others), (8, 14), generator=g)]
    src[:, 6] = SEP  # a question of six pieces, then the passage
    src[2, 3] = SEP  # and one row with a second separator
    lengths = torch.randint(9, 15, (8,), generator=g)
    src[torch.arange(14) >= lengths[:, None]] = 0
    expected = loop_question_words(src, lengths, SEP, PIECES)
    assert (expected >= 1).any() and (expected == -1).any()
    starts = torch.tensor([p.startswith("▁") for p in PIECES])
    word, passage = question_words(src, lengths, torch.tensor(SEP), starts)
    assert torch.equal(word, expected)
    assert torch.equal(passage, (torch.cumsum(src == SEP, 1) > 0) & (src != SEP)
                       & (torch.arange(14) < lengths[:, None]))


def test_match_words_tell_the_two_people_of_a_question_apart():
    pieces = [*PIECES, "▁What", "▁is", "▁Kel", "bi", "▁to"]
    ids = {p: i for i, p in enumerate(pieces)}
    question = ["▁What", "▁is", "▁Kel", "bi", "▁to", "▁Norzu", "?", "<sep>"]
    passage = ["▁Norzu", "▁is", "▁Kel", "bi", "."]
    src = torch.tensor([[ids[p] for p in question + passage]])
    match = SourceMatch(len(pieces), 4, "<sep>", words=3)
    match.set_pieces(pieces)
    with torch.no_grad():
        match.embedding.weight.copy_(torch.arange(5.0)[:, None].expand(5, 4))
        kinds = match(src, torch.tensor([src.size(1)]))[0, :, 0].tolist()
    # question: Kel bi and Norzu match (1); passage: Norzu is word 4 (capped at 2), is word 1,
    # Kel bi word 2 (capped at 2: the third told apart), . unmatched
    assert kinds == [0, 1, 1, 1, 0, 1, 0, 0] + [2 + 2, 2 + 1, 2 + 2, 2 + 2, 0]
    with pytest.raises(ConfigError, match="data.reverse_source=true puts it at the source's end"):
        match.set_pieces(pieces, reversed_source=True)
    with pytest.raises(ConfigError, match="set model.net.match_separator"):
        tiny_model(match_words=4)


def test_checkpoints_made_before_match_words_keep_their_keys():
    assert list(SourceMatch(len(PIECES), 8, "<sep>").state_dict()) == ["separator_id",
                                                                      "embedding.weight"]
    assert "word_starts" in SourceMatch(len(PIECES), 8, "<sep>", words=2).state_dict()


def test_match_pooling_gives_every_mention_of_a_question_word_their_mean():
    pieces = [*PIECES, "▁What", "▁is", "▁Kel", "bi", "▁to"]
    ids = {p: i for i, p in enumerate(pieces)}
    tokens = ["▁What", "▁is", "▁Kel", "bi", "▁to", "▁Norzu", "?", "<sep>",
              "▁Norzu", "▁is", "▁Kel", "bi", ".", "▁Kel", "bi"]
    src = torch.tensor([[ids[p] for p in tokens]])
    match = SourceMatch(len(pieces), 4, "<sep>", words=8, pool_size=3)
    match.set_pieces(pieces)
    torch.manual_seed(0)
    output = torch.randn(1, len(tokens), 3)
    with torch.no_grad():
        added = match.mentions(output, src, torch.tensor([len(tokens)]))[0]
    groups = {"What": [0], "is": [1, 9], "Kelbi": [2, 3, 10, 11, 13, 14], "to": [4],
              "Norzu?": [5, 6, 8]}  # a word runs to the next piece that starts one
    for members in groups.values():
        expected = match.pool(output[0, members].mean(0))
        for i in members:
            torch.testing.assert_close(added[i], expected)
    for i in (7, 12):  # the separator and an unmatched passage piece are in no group
        assert not added[i].any()
    with pytest.raises(ConfigError, match="set model.net.match_words"):
        SourceMatch(len(pieces), 4, "<sep>", pool_size=3)
