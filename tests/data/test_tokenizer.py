import pickle

import pytest

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer
from qa_seq2seq.errors import ConfigError

TEXTS = ["What is 3 plus 4?", "7", "Mary went to the kitchen. Where is Mary?", "kitchen"] * 20


@pytest.mark.parametrize("model_type", ["unigram", "bpe", "char"])
def test_special_ids_and_round_trip(model_type):
    tok = Tokenizer.train(TEXTS, vocab_size=60, model_type=model_type)
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
    ids = tok.encode(["Where is Mary?"])[0]
    assert min(ids) > EOS_ID
    assert tok.decode([ids + [EOS_ID, PAD_ID]]) == ["Where is Mary?"]


def test_save_load_pickle_and_determinism(tmp_path):
    tok = Tokenizer.train(TEXTS, vocab_size=60)
    assert Tokenizer.train(TEXTS, vocab_size=60) == tok
    assert Tokenizer.load(tok.save(tmp_path / "t.model")) == tok
    assert pickle.loads(pickle.dumps(tok)).encode(["kitchen"]) == tok.encode(["kitchen"])


def test_unknown_characters_become_unk():
    tok = Tokenizer.train(TEXTS, vocab_size=60)
    assert UNK_ID in tok.encode(["日本"])[0]


NUMBERS = [f"What is {a * 37 % 1000} plus {a * 91 % 10000}? {a * 128 % 100000}" for a in range(300)]


def test_split_digits_gives_every_digit_its_own_piece():
    digits = Tokenizer.train(NUMBERS, vocab_size=120)  # split_digits is the default
    pieces = digits.pieces("-29484 plus 631.907")
    assert [c for p in pieces for c in p if c.isdigit()] == [*"29484631907"]
    assert all(sum(c.isdigit() for c in p) <= 1 for p in pieces)
    chunks = Tokenizer.train(NUMBERS, vocab_size=120, split_digits=False)
    assert any(sum(c.isdigit() for c in p) > 1 for p in chunks.pieces("-29484 plus 631.907"))


def test_byte_fallback_spells_unseen_characters_instead_of_unk():
    with_bytes = Tokenizer.train(NUMBERS, vocab_size=600, byte_fallback=True)
    ids = with_bytes.encode(["plus ☃ é"])[0]
    assert UNK_ID not in ids and with_bytes.decode([ids]) == ["plus ☃ é"]
    assert UNK_ID in Tokenizer.train(NUMBERS, vocab_size=120).encode(["plus ☃"])[0]
    with pytest.raises(ConfigError, match="vocab_size=256 leaves no room"):
        Tokenizer.train(NUMBERS, vocab_size=256, byte_fallback=True)
