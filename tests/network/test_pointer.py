"""Copy attention against a hand-computed mixture, and what it is for: copying a token the
output layer never learned to write."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.attention import Attention
from tests.conftest import random_batch, tiny_model


def copy_model(score="general", seed=0, **options):
    return tiny_model(attention=partial(Attention, score), copy=True, seed=seed, **options).eval()


def by_hand(model, src, lengths, tgt):
    """P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{s: src_s = w} a_s, computed term by term."""
    decoder = model.decoder
    state = model._start(src, lengths)
    inputs = decoder.embedding(tgt)
    hidden, _, weights = decoder._hidden(inputs, state)  # (B, T, H), (B, T, S)
    vocab = decoder.output(hidden).softmax(-1)  # (B, T, V)
    p_gen = torch.sigmoid(decoder.copy.switch(torch.cat([hidden, inputs], -1)))  # (B, T, 1)
    copied = torch.zeros_like(vocab)
    for b in range(src.size(0)):
        for s in range(int(lengths[b])):
            copied[b, :, src[b, s]] += weights[b, :, s]
    return p_gen * vocab + (1 - p_gen) * copied, p_gen


@pytest.mark.parametrize("options", [{}, {"input_feeding": True}, {"num_layers": 3,
                                                                   "attend_from": "bottom"}])
def test_the_distribution_is_the_hand_computed_mixture(options):
    model = copy_model(**options)
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    log_probs = model(src, lengths, tgt)  # (B, T, V)
    expected, p_gen = by_hand(model, src, lengths, tgt)
    torch.testing.assert_close(log_probs.exp(), expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(5, 4))
    assert 0.05 < p_gen.mean() < 0.95  # both parts really mix


def test_the_switch_decides_between_generating_and_copying():
    model = copy_model()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 3))
    with torch.no_grad():
        model.decoder.copy.switch.bias.fill_(60.0)  # generate only
        generated = model(src, lengths, tgt).exp()
        model.decoder.copy.switch.bias.fill_(-60.0)  # copy only
        copied = model(src, lengths, tgt).exp()
    plain = model.decoder.output(model.decoder._hidden(model.decoder.embedding(tgt),
                                                       model._start(src, lengths))[0])
    torch.testing.assert_close(generated, plain.softmax(-1), atol=1e-6, rtol=1e-5)
    for b in range(5):  # only the question's own tokens can be copied
        others = [v for v in range(11) if v not in src[b, :lengths[b]].tolist()]
        assert copied[b][:, others].max() < 1e-20
        torch.testing.assert_close(copied[b].sum(-1), torch.ones(3))


def test_copy_needs_attention():
    with pytest.raises(ConfigError, match=r"model.net.copy=true copies source tokens through the "
                                          r"attention weights: choose an attention"):
        tiny_model(copy=True)


def test_copy_learns_to_answer_with_tokens_never_seen_as_answers():
    """Answer the question's first token: trained on tokens 4-11 as answers, tested on 12-15.
    The output layer never sees 12-15 as targets; the copy switch can still write them."""
    def batch(low, high, generator, size=64):
        src = torch.randint(low, high, (size, 5), generator=generator)
        return src, torch.full((size,), 5), torch.stack([src[:, 0], torch.full((size,), EOS_ID)], 1)

    def train_and_test(copy):
        torch.manual_seed(0)
        options = {"attention": partial(Attention, "general"), "copy": copy}
        model = tiny_model(vocab_size=16, **options)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
        g = torch.Generator().manual_seed(0)
        for _ in range(150):
            src, lengths, tgt = batch(4, 12, g)
            tgt_in = torch.cat([torch.full((64, 1), BOS_ID), tgt[:, :-1]], 1)
            loss = F.cross_entropy(model(src, lengths, tgt_in).flatten(0, 1), tgt.flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        src, lengths, tgt = batch(12, 16, g, size=200)
        with torch.no_grad():
            tgt_in = torch.cat([torch.full((200, 1), BOS_ID), tgt[:, :-1]], 1)
            first = model(src, lengths, tgt_in)[:, 0].argmax(-1)
        return (first == tgt[:, 0]).float().mean().item()

    assert train_and_test(copy=True) > 0.9
    assert train_and_test(copy=False) < 0.1
