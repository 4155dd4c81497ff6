import pytest

from qa_seq2seq.decoding.metrics import (
    corpus_metrics,
    error_analysis,
    exact_match,
    normalize_answer,
    token_f1,
    wrong_kind,
)


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


def test_wrong_answers_are_told_apart():
    source = "Where does Kelbi live? <sep> Kelbi lives in Ginortel. Dorna is 41."
    assert wrong_kind("Ginor", "Ginortel", source) == "cut"
    assert wrong_kind("Ginortel is", "Ginortel", source) == "extended"
    assert wrong_kind("Kelbi", "Ginortel", source) == "other_span"
    assert wrong_kind("Zanvar", "Ginortel", source) == "nowhere"
    assert wrong_kind("", "Ginortel", source) == "nowhere"


def test_error_analysis_by_kind_family_and_answer_length():
    m = error_analysis(["Ginor", "Ginortel", "Kelbi", "41", "40"],
                       ["Ginortel", "Ginortel", "Dorna", "41", "41"],
                       ["Kelbi lives in Ginortel. Dorna is 41."] * 5, [3, 3, 2, 2, 12],
                       ["place", "place", "name", "number", "number"])
    assert m["wrong/cut"] == m["wrong/other_span"] == m["wrong/nowhere"] == pytest.approx(1 / 3)
    assert m["wrong/extended"] == 0.0
    assert m["place/wrong/cut"] == 1.0 and m["number/wrong/nowhere"] == 1.0
    assert m["pieces/3/exact_match"] == 0.5 and m["pieces/3/count"] == 2
    assert m["pieces/10+/count"] == 1 and m["number/pieces/2/exact_match"] == 1.0
    assert [k for k in m if k.startswith("pieces/")] == [  # shortest answers first
        "pieces/2/exact_match", "pieces/2/count", "pieces/3/exact_match", "pieces/3/count",
        "pieces/10+/exact_match", "pieces/10+/count"]
