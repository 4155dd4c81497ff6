import pytest

from qa_seq2seq.decoding.metrics import corpus_metrics, exact_match, normalize_answer, token_f1


def test_squad_normalisation():
    assert normalize_answer("The  Kitchen!") == "kitchen"
    assert exact_match("the kitchen", "Kitchen.") == 1.0
    assert exact_match("kitchens", "kitchen") == 0.0


def test_token_f1():
    assert token_f1("red blue", "red green") == pytest.approx(0.5)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_corpus_metrics_with_families():
    m = corpus_metrics(["19", "kitchen", "3"], ["19", "garden", "3"], ["math", "story", "math"])
    assert m["exact_match"] == pytest.approx(2 / 3)
    assert m["math/exact_match"] == 1.0 and m["story/exact_match"] == 0.0
    assert m["story/count"] == 1
    assert 0 < m["chrf"] <= 100 and m["count"] == 3
    assert m["bleu1"] == pytest.approx(100 * 2 / 3, abs=1e-3)  # one-word answers still count


def test_numbers_keep_their_sign_and_decimal_point():
    assert exact_match("-5", "5") == 0.0
    assert exact_match("-631.9", "6319") == 0.0
    assert exact_match("-631.9", "-631.9.") == 1.0  # a full stop after a number is punctuation
    assert exact_match("-0.25", "-.25") == 0.0
    assert normalize_answer("It is -0.5, not 1.5.") == "it is -0.5 not 1.5"
    assert normalize_answer("well-known e-mail") == "wellknown email"  # SQuAD's rule for words
