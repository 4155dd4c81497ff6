import pickle

import pytest

from qa_seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

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
