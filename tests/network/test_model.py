"""The network: padding never leaks, the thought-vector feed, explicit initial states, scope names
(the bridges are in test_bridge.py)."""

import pytest
import torch
import torch.nn.functional as F

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.rnn import State
from tests.conftest import random_batch, tiny_model


@pytest.mark.parametrize("cell", ["lstm", "peephole_lstm", "layernorm_lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_state_does_not_depend_on_batch_padding(cell, bidirectional):
    model = tiny_model(cell, bidirectional_encoder=bidirectional,
                       bridge="linear" if bidirectional else "state").eval()
    src, lengths = random_batch()
    batched = model.encoder(src, lengths).state
    for b in range(src.size(0)):
        alone = model.encoder(src[b : b + 1, : lengths[b]], lengths[b : b + 1]).state
        torch.testing.assert_close(batched.h[:, b], alone.h[:, 0], atol=1e-5, rtol=1e-5)
        if alone.c is not None:
            torch.testing.assert_close(batched.c[:, b], alone.c[:, 0], atol=1e-5, rtol=1e-5)
        # Extra padding after the question changes nothing either.
        padded = torch.cat([src[b : b + 1, : lengths[b]], torch.zeros(1, 3, dtype=torch.long)], 1)
        more = model.encoder(padded, lengths[b : b + 1]).state
        torch.testing.assert_close(more.h, alone.h, atol=1e-5, rtol=1e-5)


def test_feed_encoder_state_concatenates_the_thought_vector_to_every_step():
    model = tiny_model(feed_encoder_state=True).eval()
    assert model.decoder.rnn.input_size == 8 + 12
    src, lengths = random_batch()
    state = model.encode(src, lengths)
    torch.testing.assert_close(state.context, model.encoder(src, lengths).state.h[-1])
    tgt = torch.randint(4, 11, (5, 3))
    logits = model(src, lengths, tgt)
    assert logits.shape == (5, 3, 11)
    # Changing the context changes every step's output.
    other = model.decoder(tgt, state._replace(context=torch.zeros_like(state.context))).logits
    assert not torch.allclose(other[:, -1], logits[:, -1])


def test_pooled_encoder_state_is_the_self_attentive_sum_of_the_real_tokens():
    model = tiny_model(feed_encoder_state="pooled").eval()
    assert model.decoder.rnn.input_size == 8 + 12
    pooling = model.decoder.pooling
    src, lengths = random_batch()
    context = model.encode(src, lengths).context  # (B, 12)
    for b in range(src.size(0)):  # by hand, one question alone with no padding at all
        m = model.encoder(src[b : b + 1, : lengths[b]], lengths[b : b + 1]).output[0]  # (S_b, 12)
        scores = torch.tanh(m @ pooling.key.weight.T) @ pooling.v.weight[0]  # (S_b,)
        expected = (torch.exp(scores) / torch.exp(scores).sum()) @ m
        torch.testing.assert_close(context[b], expected, atol=1e-5, rtol=1e-5)
    # The summary reaches every step's output; its parameters live under the decoder's scope.
    tgt = torch.randint(4, 11, (5, 3))
    logits = model(src, lengths, tgt)
    other = model.decoder(tgt, model.encode(src, lengths)._replace(
        context=torch.zeros_like(context))).logits
    assert not torch.allclose(other[:, -1], logits[:, -1])
    assert {"decoder.pooling.key.weight", "decoder.pooling.v.weight"} <= dict(
        model.named_parameters()).keys()


@pytest.mark.parametrize("value", ["mean", "yes", 1])
def test_feed_encoder_state_names_its_choices(value):
    with pytest.raises(ConfigError, match="none, final, pooled"):
        tiny_model(feed_encoder_state=value)


def test_explicit_initial_state_replaces_the_bridge():
    model = tiny_model().eval()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 3))
    zeros = State(torch.zeros(2, 5, 12), torch.zeros(2, 5, 12))
    expected = tiny_model(bridge="none").eval()
    expected.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(src, lengths, tgt, initial_state=zeros),
                               expected(src, lengths, tgt))


@pytest.mark.parametrize("cell", ["lstm", "peephole_lstm", "gru"])
def test_step_by_step_decoding_equals_teacher_forcing(cell):
    """For lstm this also holds the one-step loop path against torch's kernel."""
    model = tiny_model(cell).eval()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    full = model(src, lengths, tgt)
    state = model.encode(src, lengths)
    for t in range(tgt.size(1)):
        logits, state = model.step(tgt[:, t], state)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=1e-5)


def test_overfits_one_batch_and_decodes_it_back():
    from qa_seq2seq.decoding.search import greedy_search

    model = tiny_model(vocab_size=12, hidden_size=32, dropout=0.0)
    src, lengths = random_batch(batch=8, vocab_size=12, max_len=5, seed=1)
    answers = torch.stack([src[:, 0], src[:, 1]], 1)  # answer: the first two question tokens
    answers[lengths == 1, 1] = 5
    tgt_in = torch.cat([torch.full((8, 1), 2), answers], 1)
    tgt_out = torch.cat([answers, torch.full((8, 1), 3)], 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        loss = F.cross_entropy(model(src, lengths, tgt_in).flatten(0, 1), tgt_out.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01
    decoded = greedy_search(model.eval(), src, lengths)
    assert [h[0].tokens for h in decoded] == answers.tolist()


def test_scope_names_name_the_parameters_and_the_rnns():
    named = tiny_model(scopes={"encoder": "question_encoder", "decoder": "answer_decoder"},
                       bridge="linear")
    default = tiny_model(bridge="linear")
    renamed = {n.replace("encoder.", "question_encoder.", 1) if n.startswith("encoder.") else
               n.replace("decoder.", "answer_decoder.", 1) if n.startswith("decoder.") else n
               for n in default.state_dict()}
    assert set(named.state_dict()) == renamed
    assert any(n.startswith("bridge.") for n in renamed)
    assert (named.encoder.rnn.name, named.decoder.rnn.name) == ("question_encoder", "answer_decoder")
    src, lengths = random_batch()
    tgt_in = torch.randint(4, 11, (src.size(0), 3))
    named.load_state_dict({n: default.state_dict()[k] for n, k in
                           zip(named.state_dict(), default.state_dict())})
    assert torch.equal(named.eval()(src, lengths, tgt_in), default.eval()(src, lengths, tgt_in))


@pytest.mark.parametrize("scopes,message", [
    ({"encoder": "question.encoder"}, "must be a Python identifier"),
    ({"decoder": "encode"}, "not an attribute of the network"),
    ({"encoder": "training"}, "not an attribute of the network"),
    ({"encoder": "decoder"}, "two parts share a name"),
    ({"embedder": "x"}, "model.net.scopes.embedder: no such part"),
    ({"encoder": ""}, "model.net.scopes.encoder='': a scope name must be"),  # not silently encoder
])
def test_bad_scope_names_are_refused_naming_the_key(scopes, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(scopes=scopes)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_keeps_one_minus_p_of_the_units_scaled_as_nn_dropout_does(p):
    from qa_seq2seq.network.dropout import Dropout

    torch.manual_seed(0)
    x = torch.randn(64, 11, 256, requires_grad=True)
    drop, reference = Dropout(p), torch.nn.Dropout(p)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.01  # 180k units: 5 sigma < 0.006
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    assert abs(kept.float().mean().item() - (reference(x) != 0).float().mean().item()) < 0.01
    y.sum().backward()  # the gradient flows through the kept units only, scaled the same way
    torch.testing.assert_close(x.grad, kept.float() / (1 - p))
    assert not torch.equal(drop(x), y)  # a new mask every call
    torch.testing.assert_close(drop.eval()(x), x)  # off in evaluation
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert Dropout(p).train()(x.bfloat16()).dtype == torch.bfloat16
    assert not Dropout(1.0)(x).any() and torch.equal(Dropout(0.0)(x), x)


def test_dropout_on_a_big_endian_host_is_torchs(monkeypatch):
    from qa_seq2seq.network import dropout as module

    x = torch.randn(8, 16)
    monkeypatch.setattr(module, "_WORDS_IN_ORDER", False)
    torch.manual_seed(0)
    ours = module.dropout(x, 0.3, training=True)
    torch.manual_seed(0)
    torch.testing.assert_close(ours, torch.nn.functional.dropout(x, 0.3, training=True))
