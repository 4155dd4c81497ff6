"""Place-value embeddings of question digits: places against a string reference, both reading
directions, and the encoder's inputs changed at digits only."""

import random
import re

import pytest
import torch

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.builder import build_network
from qa_seq2seq.network.places import DIGIT, OTHER, POINT, NumberPlaces, flip_rows, number_places
from qa_seq2seq.network.rnn import LSTM
from qa_seq2seq.train import train
from tests.conftest import compose_train, toy_data_overrides

CHARS = [chr(c) for c in range(32, 127)]  # a character-level vocabulary: id = index


def reference_places(text: str) -> list[int | None]:
    """Each character's place in its number (None off digits), from the number's text."""
    places: list[int | None] = [None] * len(text)
    for number in re.finditer(r"\d+(?:\.\d+)?", text):
        whole, _, fraction = number.group().partition(".")
        for i in range(len(whole)):
            places[number.start() + i] = len(whole) - 1 - i
        for j in range(len(fraction)):
            places[number.start() + len(whole) + 1 + j] = -(j + 1)
    return places


def random_question(rng: random.Random) -> str:
    def number() -> str:
        whole = str(rng.randrange(10 ** rng.randint(1, 9)))
        return whole + (f".{rng.randrange(10 ** 6):0{rng.randint(1, 6)}d}"[:rng.randint(2, 7)]
                        if rng.random() < 0.5 else "")
    return rng.choice(["What is {} + {}?", "Subtract {} from {}.", "{} - -{}", "Sum {} and {}."]
                      ).format(number(), number())


def char_places(texts: list[str], reversed_source: bool) -> tuple[NumberPlaces, torch.Tensor,
                                                                  torch.Tensor]:
    places = NumberPlaces(len(CHARS), 4)
    places.set_pieces(CHARS, reversed_source)
    rows = [[CHARS.index(c) for c in (t[::-1] if reversed_source else t)] for t in texts]
    width = max(map(len, rows))
    src = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    return places, src, torch.tensor([len(r) for r in rows])


def test_places_match_a_reference_computed_from_the_text():
    rng = random.Random(0)
    texts = [random_question(rng) for _ in range(200)] + ["1.2.3 and 4. 5", "Add 7.", ".5"]
    places, src, _ = char_places(texts, reversed_source=False)
    got, digit = number_places(places.kinds[src])
    for row, text in enumerate(texts):
        expected = reference_places(text)
        found = [int(p) if d else None for p, d in zip(got[row, :len(text)], digit[row])]
        if text == "1.2.3 and 4. 5":  # the first point counts; the second is not a point
            expected = [0, None, -1, None, -3] + expected[5:]
        assert found == expected, text


@pytest.mark.parametrize("reversed_source", [False, True])
def test_a_question_read_backwards_gets_the_same_place_embeddings(reversed_source):
    # The last: the longest row ends with a digit (no padding after it), and places beyond ±16
    # share the outermost embedding.
    texts = ["What is -29484 + -631.907871?", "Subtract 366874.4196 from 14145843086.", "1 - 2",
             "What is 0.0000000000000000001 + 12345678901234567890123 - 47"]
    places, src, lengths = char_places(texts, reversed_source)
    torch.manual_seed(0)
    torch.nn.init.normal_(places.embedding.weight)
    embedded = places(src, lengths)  # (B, S, E)
    if reversed_source:  # back to reading order, to compare with the text
        embedded = embedded.gather(1, flip_rows(
            torch.arange(src.size(1)).expand_as(src), lengths)[..., None].expand_as(embedded))
    for row, text in enumerate(texts):
        for i, place in enumerate(reference_places(text)):
            expected = (torch.zeros(4) if place is None  # off digits: nothing added
                        else places.embedding.weight[
                            max(-places.max_place, min(place, places.max_place)) + places.max_place])
            assert torch.equal(embedded[row, i], expected)
        assert not embedded[row, len(text):].any()  # padding: zeros


def test_pieces_are_sorted_into_digits_points_and_the_rest():
    places = NumberPlaces(6, 2)
    places.set_pieces(["<pad>", "7", "▁7", ".", "▁.", "7a"], reversed_source=True)
    assert places.kinds.tolist() == [OTHER, DIGIT, DIGIT, POINT, OTHER, OTHER]
    assert bool(places.reversed)
    with pytest.raises(ConfigError, match=r"2 pieces with several digits \(e.g. '▁94'\).*"
                                          r"split_digits=true or data.tokenizer.model_type=char"):
        places.set_pieces(["<pad>", "7", "▁94", ".", "1.5", "a"], reversed_source=False)


def test_training_refuses_a_tokenizer_that_cuts_numbers_into_digit_pairs(tmp_path):
    cfg = compose_train(["+experiment=smoke", "model.net.number_places=true",
                         "data.tokenizer.split_digits=false", "data.tokenizer.vocab_size=200",
                         *toy_data_overrides(tmp_path / "data")],
                        tmp_path / "run")
    with pytest.raises(ConfigError, match="number_places=true needs one piece per digit"):
        train(cfg)


def test_places_change_the_encoder_inputs_at_digits_only():
    torch.manual_seed(0)
    net = build_network(len(CHARS), LSTM, embedding_size=8, hidden_size=8, num_layers=1,
                  number_places=True)
    net.encoder.places.set_pieces(CHARS, reversed_source=False)
    assert dict(net.named_parameters())["encoder.places.embedding.weight"].shape == (33, 8)
    _, src, lengths = char_places(["ab 12.5 c"], reversed_source=False)
    seen = []
    net.encoder.rnn.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    net.encoder(src, lengths)
    changed = (seen[0] != net.encoder.embedding(src)).any(-1)[0]
    assert changed.tolist() == [c in "0123456789" for c in "ab 12.5 c"]


def reference_values(text: str) -> list[float | None]:
    """The value of the number each character belongs to (None off digits), from its text."""
    values: list[float | None] = [None] * len(text)
    for number in re.finditer(r"\d+(?:\.\d+)?", text):
        for i, c in enumerate(number.group()):
            if c.isdigit():
                values[number.start() + i] = float(number.group())
    return values


@pytest.mark.parametrize("reversed_source", [False, True])
def test_number_values_match_the_numbers_read_from_the_text(reversed_source):
    from qa_seq2seq.network.places import size_features

    rng = random.Random(1)
    texts = [random_question(rng) for _ in range(100)] + ["Bo is 52. Al turned 18 in 1950."]
    places = NumberPlaces(len(CHARS), 4, values=True)
    places.set_pieces(CHARS, reversed_source)
    _, src, lengths = char_places(texts, reversed_source)
    torch.manual_seed(0)
    torch.nn.init.normal_(places.values.weight)
    with torch.no_grad():
        torch.nn.init.zeros_(places.embedding.weight)  # only the values are added
        embedded = places(src, lengths)
    if reversed_source:
        embedded = embedded.gather(1, flip_rows(
            torch.arange(src.size(1)).expand_as(src), lengths)[..., None].expand_as(embedded))
    for row, text in enumerate(texts):
        for i, value in enumerate(reference_values(text)):
            if value is None:
                assert not embedded[row, i].any()
            else:
                expected = places.values(size_features(torch.tensor([[value]])))[0, 0]
                torch.testing.assert_close(embedded[row, i], expected, rtol=1e-4, atol=1e-5)
    older, younger = size_features(torch.tensor([[90.0, 18.0, 52.0]]))[0, :, 1].tolist()[:2]
    assert older == pytest.approx(0.9) and younger == pytest.approx(0.18)


def test_number_values_need_places_and_leave_old_checkpoints_loadable():
    with pytest.raises(ConfigError, match="set model.net.number_places=true too"):
        build_network(11, LSTM, number_values=True)
    assert "values.weight" not in NumberPlaces(11, 4).state_dict()
    assert {"values.weight", "digit_values"} <= NumberPlaces(11, 4, values=True).state_dict().keys()
