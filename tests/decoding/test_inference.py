"""inference.py: answering many questions in length-sorted batches, results in input order."""

from functools import partial

import pytest
import torch

from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.decoding.hypotheses import Hypothesis
from qa_seq2seq.decoding.inference import alignment, answer
from qa_seq2seq.decoding.search import beam_search, greedy_search, sample
from qa_seq2seq.network.attention import Attention
from tests.decoding.test_search import peaked_model

QUESTIONS = [[5, 6, 7, 8, 9], [4], [7, 7, 8], [9, 4, 5, 6, 7, 8, 9], [6, 5]]


@pytest.mark.parametrize("search", [partial(greedy_search, max_length=6),
                                    partial(beam_search, beam_size=3, n_best=2, max_length=6)])
@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_results_follow_input_order_and_equal_one_question_at_a_time(search, batch_size):
    model = peaked_model()
    alone = [search(model, torch.tensor([q]), torch.tensor([len(q)]))[0] for q in QUESTIONS]
    batched = answer(model, QUESTIONS, search, batch_size)
    assert len(batched) == len(QUESTIONS)
    for got, want in zip(batched, alone):
        assert [h.tokens for h in got] == [h.tokens for h in want]
        assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)


def test_batches_are_sorted_by_question_length():
    seen = []

    def search(model, src, lengths):
        seen.append(lengths.tolist())
        return [[Hypothesis([], 0.0, 0.0, [], True)] for _ in lengths]

    answer(None, QUESTIONS, search, batch_size=2)
    assert seen == [[1, 2], [3, 5], [7]]


def test_an_empty_question_is_refused():
    with pytest.raises(ValueError, match="every question needs at least one token"):
        answer(peaked_model(), [[5], []], partial(greedy_search, max_length=3))


def test_alignment_is_the_attention_the_answer_was_decoded_with():
    model = peaked_model(variant="attention")
    question = QUESTIONS[3]
    (best,) = answer(model, [question], partial(greedy_search, max_length=6))[0]
    rows = alignment(model, question, best)
    tokens = best.tokens + [3] * best.finished  # <eos> gets its own row when finished
    assert len(rows) == max(len(tokens), 1) and all(len(r) == len(question) for r in rows)
    assert [sum(r) for r in rows] == pytest.approx([1.0] * len(rows), abs=1e-5)
    tgt_in = torch.tensor([[2, *tokens[:-1]]])
    with torch.no_grad():
        expected = model.attention_weights(torch.tensor([question]),
                                           torch.tensor([len(question)]), tgt_in)[0]
    assert isinstance(model.decoder.attention, Attention)
    torch.testing.assert_close(torch.tensor(rows), expected[: len(rows)])


def test_answers_of_a_reverse_target_model_are_read_last_token_first():
    tokenizer = Tokenizer.train(["abcdefg hijk"] * 50, vocab_size=20, model_type="char")
    model = peaked_model(vocab_size=tokenizer.vocab_size)
    questions = [[5, 6, 7], [8, 9]]
    search = partial(sample, seed=0, max_length=6, min_length=3)  # varied answers, 3+ tokens
    as_written = answer(model, questions, search, tokenizer=tokenizer)
    reversed_ = answer(model, questions, search, tokenizer=tokenizer, reverse_target=True)
    for a, b in zip(as_written, reversed_):
        assert a[0].tokens == b[0].tokens  # the decoder's own order is kept
        assert b[0].text == tokenizer.decode([a[0].tokens[::-1]])[0]
    assert any(a[0].text != b[0].text for a, b in zip(as_written, reversed_))


def test_n_best_entries_with_the_same_text_are_merged_into_the_best():
    tokenizer = Tokenizer.train(["ab ba"] * 50, vocab_size=20, model_type="char")
    (space, a), (_, b) = tokenizer.encode(["a", "b"])  # "▁a", "▁b"

    def hypothesis(tokens, score):
        return Hypothesis(tokens, score, score, [score / len(tokens)] * len(tokens), True)

    n_best = [hypothesis([a], -1.0), hypothesis([space, a], -2.0), hypothesis([b], -3.0)]
    assert tokenizer.decode([[space, a]]) == tokenizer.decode([[a]])  # "▁" shows as nothing
    (merged,) = answer(None, [[a]], lambda model, src, lengths: [n_best], tokenizer=tokenizer)
    assert [(h.text, h.score) for h in merged] == [("a", -1.0), ("b", -3.0)]
