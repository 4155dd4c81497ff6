"""Copying that continues a span: the spans, biases and word-boundary inputs against a loop over
every position, and what it is for: copying names longer than any answer seen in training."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID
from qa_seq2seq.decoding.search import greedy_search
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.attention import Attention
from qa_seq2seq.network.spans import CONTINUES, ENDS, NOTHING, SpanFollowing
from tests.conftest import tiny_model

PIECES = ["<pad>", "<unk>", "<s>", "</s>", "▁a", "▁b", "b", "c", ".", "▁d", "d"]


def by_loop(tokens, src, length, continues):
    """For one row: per step, the span length ending at each source position, the positions
    after a span / after a longest span, and what follows the longest."""
    answer, steps = [], []
    for token in tokens:
        answer.append(token)
        run = []
        for s in range(len(src)):
            k = 0
            while (k < len(answer) and s - k >= 0 and s - k < length
                   and src[s - k] == answer[len(answer) - 1 - k]):
                k += 1
            run.append(k)
        longest = max(run)
        after = [s > 0 and run[s - 1] > 0 for s in range(len(src))]
        after_longest = [s > 0 and run[s - 1] == longest > 0 for s in range(len(src))]
        if longest == 0:
            kind = NOTHING
        else:
            ends = [s for s in range(len(src)) if run[s] == longest]
            kind = CONTINUES if any(s + 1 < length and continues[src[s + 1]] for s in ends) \
                else ENDS
        steps.append((run, after, after_longest, kind))
    return steps


def test_spans_biases_and_inputs_match_a_loop_over_every_position():
    span = SpanFollowing(len(PIECES), 4)
    span.set_pieces(PIECES)
    assert span.continues.tolist() == [p in ("b", "c", "d") for p in PIECES]
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, len(PIECES), (6, 9), generator=g)
    lengths = torch.tensor([9, 7, 5, 9, 3, 8])
    src[torch.arange(9) >= lengths[:, None]] = 0
    tokens = torch.cat([torch.full((6, 1), BOS_ID), src[:, 2:6]], 1)  # copies, then others
    tokens[3, 2:] = torch.tensor([4, 6, 7])
    mask = torch.arange(9) < lengths[:, None]
    with torch.no_grad():
        span.follow.copy_(torch.tensor([2.0, 0.5]))
        out = span(tokens, src, mask, torch.zeros_like(src))
    kinds = span.embedding.weight  # (3, E): the input each step gets is one of its rows
    for b in range(6):
        for t, (run, after, longest, kind) in enumerate(
                by_loop(tokens[b].tolist(), src[b].tolist(), int(lengths[b]), span.continues)):
            bias = [2.0 * a + 0.5 * m for a, m in zip(after, longest)]
            assert out.bias[b, t].tolist() == pytest.approx(bias)
            torch.testing.assert_close(out.inputs[b, t], kinds[kind])
            if t == tokens.size(1) - 1:
                assert out.run[b].tolist() == run
    assert (out.bias[:, 0] == 0).all()  # after <bos> nothing is matched


def test_the_carried_spans_continue_across_calls():
    """Step by step (as a search runs it) equals one call over the whole answer."""
    span = SpanFollowing(len(PIECES), 4)
    span.set_pieces(PIECES)
    src = torch.tensor([[4, 6, 7, 8, 5, 6, 9, 10]])
    mask = torch.ones_like(src, dtype=torch.bool)
    tokens = torch.tensor([[BOS_ID, 5, 6, 9, 10]])
    whole = span(tokens, src, mask, torch.zeros_like(src))
    run = torch.zeros_like(src)
    for t in range(tokens.size(1)):
        step = span(tokens[:, t:t + 1], src, mask, run)
        torch.testing.assert_close(step.bias[:, 0], whole.bias[:, t])
        torch.testing.assert_close(step.inputs[:, 0], whole.inputs[:, t])
        run = step.run
    assert run.tolist() == [[0, 0, 0, 0, 0, 0, 0, 4]]  # ▁b b ▁d d copied: a span of 4


def test_copy_span_needs_copy_and_a_source_read_forwards():
    with pytest.raises(ConfigError, match="model.net.copy_span=true continues the span copy "
                                          "attention copies: set model.net.copy=true too"):
        tiny_model(attention=partial(Attention, "dot"), copy_span=True)
    model = tiny_model(attention=partial(Attention, "dot"), copy=True, copy_span=True)
    with pytest.raises(ConfigError, match="data.reverse_source=true reverses it"):
        model.bind_vocabulary(PIECES, reversed_source=True)


# The task: after the marker piece 4, copy the next word (a start piece 5-9, then continuation
# pieces 10-19). Trained on words of 1-3 pieces, tested on words of 5.
TASK_PIECES = ["<pad>", "<unk>", "<s>", "</s>", "▁Q", *(f"▁w{i}" for i in range(5)),
               *(f"c{i}" for i in range(10))]


def marked_words(generator, pieces, rows=64):
    sources, answers = [], []
    for _ in range(rows):
        words = [[int(torch.randint(5, 10, (1,), generator=generator))]
                 + torch.randint(10, 20, (int(pieces[torch.randint(len(pieces), (1,),
                                                                    generator=generator)]) - 1,),
                                 generator=generator).tolist() for _ in range(3)]
        asked = int(torch.randint(3, (1,), generator=generator))
        sources.append([piece for i, word in enumerate(words)
                        for piece in ([4] if i == asked else []) + word])
        answers.append(words[asked])
    src = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in sources], batch_first=True)
    return src, torch.tensor([len(s) for s in sources]), answers


def copies_long_words(copy_span: bool) -> float:
    model = tiny_model(vocab_size=len(TASK_PIECES), embedding_size=16, hidden_size=24,
                       num_layers=1, bidirectional_encoder=True, bridge="linear",
                       attention=partial(Attention, "general"), copy=True, copy_span=copy_span)
    model.bind_vocabulary(TASK_PIECES)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(120):
        src, lengths, answers = marked_words(g, [1, 1, 2, 2, 3])
        tgt_in = torch.nn.utils.rnn.pad_sequence([torch.tensor([BOS_ID, *a]) for a in answers],
                                                 batch_first=True)
        tgt_out = torch.nn.utils.rnn.pad_sequence([torch.tensor([*a, EOS_ID]) for a in answers],
                                                  batch_first=True)
        loss = F.cross_entropy(model(src, lengths, tgt_in).flatten(0, 1), tgt_out.flatten(),
                               ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    src, lengths, answers = marked_words(g, [5], rows=200)
    found = greedy_search(model.eval(), src, lengths, max_length=8)
    return sum(h[0].tokens == a for h, a in zip(found, answers)) / len(answers)


def test_copy_span_copies_words_longer_than_any_answer_in_training():
    assert copies_long_words(copy_span=True) > 0.9
    assert copies_long_words(copy_span=False) < 0.1
