"""Attention against a hand-computed softmax-weighted sum; masking; the decoder's attention paths."""

from functools import partial

import pytest
import torch
from torch import nn

from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.attention import Attention
from qa_seq2seq.network.builder import build_network
from qa_seq2seq.network.model import reorder_memory
from qa_seq2seq.network.rnn import LSTM
from tests.conftest import random_batch, tiny_model

SCORES = ["dot", "general", "bahdanau"]


def by_hand(attention: Attention, query, values, lengths):
    """Loop over batch, step and source position: the textbook formulas, no batching tricks."""
    hidden = torch.zeros_like(query)
    weights = torch.zeros(query.size(0), query.size(1), values.size(1))
    for b in range(query.size(0)):
        for t in range(query.size(1)):
            h = query[b, t]
            scores = []
            for s in range(int(lengths[b])):
                m = values[b, s]
                if attention.score == "dot":
                    scores.append(h @ m)
                elif attention.score == "general":
                    scores.append(h @ (attention.key.weight @ m))
                else:
                    features = torch.tanh(attention.query(h) + attention.key.weight @ m)
                    scores.append(attention.v.weight[0] @ features)
            a = torch.softmax(torch.stack(scores), 0)
            context = sum(a[s] * values[b, s] for s in range(len(scores)))
            weights[b, t, : len(scores)] = a
            hidden[b, t] = torch.tanh(attention.out.weight @ torch.cat([context, h]))
    return hidden, weights


@pytest.mark.parametrize("score", SCORES)
def test_attention_equals_the_softmax_weighted_sum_computed_by_hand(score):
    torch.manual_seed(0)
    attention = Attention(score, query_size=6, memory_size=6)
    values = torch.randn(3, 5, 6)
    lengths = torch.tensor([5, 2, 4])
    values[torch.arange(5)[None] >= lengths[:, None]] = 0.0
    query = torch.randn(3, 4, 6)
    out = attention(query, attention.memory(values, lengths))
    hidden, weights = by_hand(attention, query, values, lengths)
    torch.testing.assert_close(out.weights, weights)
    torch.testing.assert_close(out.hidden, hidden)


@pytest.mark.parametrize("score", SCORES)
def test_padding_gets_no_weight_and_cannot_change_the_result(score):
    torch.manual_seed(1)
    attention = Attention(score, query_size=6, memory_size=6)
    values, lengths, query = torch.randn(2, 5, 6), torch.tensor([3, 5]), torch.randn(2, 2, 6)
    out = attention(query, attention.memory(values, lengths))
    assert torch.all(out.weights[0, :, 3:] == 0)
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(2, 2))
    noisy = values.clone()
    noisy[0, 3:] = 100.0  # garbage where the first question is padded
    torch.testing.assert_close(attention(query, attention.memory(noisy, lengths)).hidden[0],
                               out.hidden[0])


@pytest.mark.parametrize("score", SCORES)
def test_reordered_memory_is_each_field_reordered_and_dot_keys_stay_its_values(score):
    attention = Attention(score, query_size=6, memory_size=6)
    ids = torch.randint(4, 11, (3, 5))  # the source tokens, kept for copy attention
    memory = attention.memory(torch.randn(3, 5, 6), torch.tensor([5, 2, 4]), ids)
    order = torch.tensor([2, 2, 0, 1])
    reordered = memory.index_select(0, order)
    for field, before in zip(reordered, memory):
        assert torch.equal(field, before[order])
    assert attention.memory(torch.randn(3, 5, 6), torch.tensor([5, 2, 4])).index_select(
        0, order).ids is None
    assert (reordered.keys is reordered.values) == (score == "dot")  # one copy, not two


@pytest.mark.parametrize("score", SCORES)
def test_a_memory_row_serves_its_questions_consecutive_query_rows_as_a_repeated_one(score):
    torch.manual_seed(2)
    attention = Attention(score, query_size=6, memory_size=6)
    memory = attention.memory(torch.randn(2, 5, 6), torch.tensor([5, 3]))
    query = torch.randn(6, 1, 6)  # 3 rows (beams) a question
    shared = attention(query, memory)
    repeated = attention(query, memory.index_select(0, torch.tensor([0, 0, 0, 1, 1, 1])))
    torch.testing.assert_close(shared.hidden, repeated.hidden)
    torch.testing.assert_close(shared.weights, repeated.weights)


def test_reorder_memory_keeps_a_row_per_question_while_rows_come_in_equal_runs():
    memory = Attention("dot", 6, 6).memory(torch.randn(3, 4, 6), torch.tensor([4, 2, 3]))
    # 6 state rows, 2 a question (beam search, k=2): question 2 (rows 4-5) leaves, the others
    # keep 2 rows each, reordered within the question.
    kept = reorder_memory(memory, torch.tensor([1, 0, 3, 3]), rows=6)
    assert torch.equal(kept.values, memory.values[[0, 1]]) and kept.keys is kept.values
    assert reorder_memory(memory, torch.tensor([0, 1, 2, 3, 4, 5]), rows=6) is memory
    uneven = reorder_memory(memory, torch.tensor([0, 1, 2, 2, 5]), rows=6)  # 3 rows of question 1
    assert torch.equal(uneven.values, memory.values[[0, 0, 1, 1, 2]])  # then a row each


def test_dot_needs_equal_sizes_and_input_feeding_needs_attention():
    with pytest.raises(ConfigError, match="model/net/attention=general or bahdanau"):
        tiny_model(attention=partial(Attention, "dot"), bidirectional_encoder=True, bridge="linear")
    tiny_model(attention=partial(Attention, "general"), bidirectional_encoder=True, bridge="linear")
    with pytest.raises(ConfigError, match="model.net.input_feeding=true"):
        tiny_model(input_feeding=True)
    with pytest.raises(ConfigError, match="unknown|use one of"):
        Attention("cosine", 4, 4)


def test_attend_from_bottom_equals_a_decoder_built_by_hand():
    """GNMT's wiring (Wu et al. 2016) from torch's LSTMs and the textbook attention: the bottom
    layer's outputs query the attention, and each layer above reads [h; context]."""
    model = tiny_model(attention=partial(Attention, "general"), attend_from="bottom",
                       num_layers=3).eval()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    decoder, (h, c) = model.decoder, model.encode(src, lengths).rnn
    bottom, upper = nn.LSTM(8, 12, 1, batch_first=True), nn.LSTM(24, 12, 2, batch_first=True)
    bottom.load_state_dict(decoder.rnn.state_dict())
    upper.load_state_dict(decoder.upper.state_dict())
    with torch.no_grad():
        values = model.encoder(src, lengths).output
        low, _ = bottom(decoder.embedding(tgt), (h[:1], c[:1]))
        _, weights = by_hand(decoder.attention, low, values, lengths)
        context = weights @ values
        high, _ = upper(torch.cat([low, context], -1), (h[1:], c[1:]))
        hidden = torch.tanh(torch.cat([context, high], -1) @ decoder.attention.out.weight.t())
        torch.testing.assert_close(model(src, lengths, tgt), decoder.output(hidden))
    assert {n for n, _ in model.named_parameters() if n.startswith("decoder.upper.")} == {
        f"decoder.upper.{kind}_l{layer}" for kind in ("weight_ih", "weight_hh", "bias_ih",
                                                      "bias_hh") for layer in (0, 1)}


def test_attend_from_bottom_keeps_the_cells_dropout_between_layers_in_training_only():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns of dropout on a one-layer RNN: none here
        model = tiny_model(attention=partial(Attention, "dot"), attend_from="bottom",
                           cell="lstm", dropout=0.0)
        dropped = build_network(11, partial(LSTM), embedding_size=8, hidden_size=12, num_layers=2,
                          decoder_cell=partial(LSTM, dropout=0.5),
                          attention=partial(Attention, "dot"), attend_from="bottom")
    # Two layers: the one place for the cell's dropout is between the bottom layer and the upper.
    assert dropped.decoder.upper_dropout == 0.5 and model.decoder.upper_dropout == 0.0
    assert dropped.decoder.rnn.dropout == dropped.decoder.upper.dropout == 0.0
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    model.train(), dropped.train()
    assert torch.equal(model(src, lengths, tgt), model(src, lengths, tgt))
    assert not torch.equal(dropped(src, lengths, tgt), dropped(src, lengths, tgt))
    dropped.eval()
    assert torch.equal(dropped(src, lengths, tgt), dropped(src, lengths, tgt))


@pytest.mark.parametrize("options,message", [
    ({}, "model.net.attend_from=bottom queries the attention"),
    ({"attention": partial(Attention, "dot"), "input_feeding": True},
     "with model.net.input_feeding=true already feeds"),
    ({"attention": partial(Attention, "dot"), "num_layers": 1}, "needs a decoder of 2 or more"),
])
def test_attend_from_bottom_refuses_what_it_cannot_wire(options, message):
    with pytest.raises(ConfigError, match=message):
        tiny_model(attend_from="bottom", **options)
    with pytest.raises(ConfigError, match="model.net.attend_from='middle': use top or bottom"):
        tiny_model(attention=partial(Attention, "dot"), attend_from="middle")


VARIANTS = {
    "dot": {"attention": partial(Attention, "dot")},
    "general+feeding": {"attention": partial(Attention, "general"), "input_feeding": True},
    "bahdanau+feeding+thinking": {"attention": partial(Attention, "bahdanau"),
                                  "input_feeding": True, "thinking_steps": 2},
    "thinking": {"thinking_steps": 3},
    "gru+general": {"attention": partial(Attention, "general"), "cell": "gru"},
    "dot+bottom": {"attention": partial(Attention, "dot"), "attend_from": "bottom"},
    "gru+bahdanau+bottom+thinking": {"attention": partial(Attention, "bahdanau"), "cell": "gru",
                                     "attend_from": "bottom", "num_layers": 3,
                                     "thinking_steps": 2},
    "dot+copy": {"attention": partial(Attention, "dot"), "copy": True},
    "general+feeding+copy": {"attention": partial(Attention, "general"), "input_feeding": True,
                             "copy": True},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_step_by_step_decoding_equals_teacher_forcing(variant):
    """The search contract (encode, then one step at a time) computes what training computes."""
    options = dict(VARIANTS[variant])
    model = tiny_model(options.pop("cell", "lstm"), **options).eval()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    forced = model(src, lengths, tgt)  # (B, T, V)
    state = model.encode(src, lengths)
    for t in range(4):
        logits, state = model.step(tgt[:, t], state)
        torch.testing.assert_close(logits, forced[:, t], atol=1e-5, rtol=1e-5)


def test_attention_weights_cover_only_real_source_tokens():
    model = tiny_model(attention=partial(Attention, "general"), input_feeding=True).eval()
    src, lengths = random_batch()
    weights = model.attention_weights(src, lengths, torch.randint(4, 11, (5, 3)))
    assert weights.shape == (5, 3, src.size(1))
    torch.testing.assert_close(weights.sum(-1), torch.ones(5, 3))
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(weights[b, :, n:] == 0)
    assert tiny_model().attention_weights(src, lengths, src[:, :2]) is None


def test_thinking_steps_run_before_bos_and_have_no_output():
    model = tiny_model(thinking_steps=3).eval()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    logits = model(src, lengths, tgt)
    assert logits.shape == (5, 4, 11)  # one output per answer position: no loss on thinking
    # The thinking input reaches the answer's logits, and it learns from the answer's loss.
    logits.sum().backward()
    assert model.decoder.thinking.grad.abs().sum() > 0
    with torch.no_grad():
        model.decoder.thinking.add_(1.0)
    assert not torch.allclose(model(src, lengths, tgt), logits)
    # By hand: three steps on the thinking vector, then the answer, from the bridged state.
    state = model._start(src, lengths)
    thinking = model.decoder.thinking.expand(5, 3, -1)
    after = model.decoder.rnn(thinking, None, state.rnn).state
    by_hand = model.decoder(tgt, state._replace(rnn=after)).logits
    torch.testing.assert_close(model(src, lengths, tgt), by_hand)


@pytest.mark.parametrize("variant", ["plain", "general+feeding"])
def test_scheduled_sampling_at_probability_one_is_teacher_forcing(variant):
    options = {} if variant == "plain" else dict(VARIANTS[variant])
    model = tiny_model(**options).eval()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    forced = model(src, lengths, tgt)
    stepwise = model._scheduled_sampling(tgt, model.encode(src, lengths), 1.0)
    torch.testing.assert_close(stepwise, forced, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["plain", "general+feeding", "bahdanau+feeding+thinking", "dot+bottom"])
def test_a_decoder_run_a_step_per_call_keeps_one_recurrent_dropout_mask(variant):
    """In training, scheduled sampling and input feeding run the decoder a step per call; each
    sequence still gets one recurrent-dropout mask, as the one-call teacher-forced pass draws:
    with every input gold and the same seed, the two compute the same."""
    torch.manual_seed(0)
    model = build_network(11, partial(LSTM, recurrent_dropout=0.5), embedding_size=8,
                          hidden_size=12, num_layers=2, **VARIANTS.get(variant, {})).train()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    torch.manual_seed(1)
    forced = model(src, lengths, tgt)
    torch.manual_seed(1)
    stepwise = model(src, lengths, tgt, teacher_forcing=1 - 1e-7)  # gold at every step
    torch.testing.assert_close(stepwise, forced, atol=1e-5, rtol=1e-5)
    torch.manual_seed(2)
    assert not torch.allclose(model(src, lengths, tgt), forced)  # a new mask for a new batch
    assert not torch.allclose(forced, model.eval()(src, lengths, tgt))  # the masks were at work


def test_scheduled_sampling_at_probability_zero_reads_its_own_predictions():
    model = tiny_model().eval()
    src, lengths = random_batch()
    tgt = torch.randint(4, 11, (5, 4))
    sampled = model(src, lengths, tgt, teacher_forcing=0.0)
    # Reference: feed <bos>, then each step's argmax, one step at a time.
    state, token, expected = model.encode(src, lengths), tgt[:, 0], []
    for _ in range(4):
        logits, state = model.step(token, state)
        expected.append(logits)
        token = logits.argmax(-1)
    torch.testing.assert_close(sampled, torch.stack(expected, 1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(sampled, model(src, lengths, tgt))  # gold inputs differ


def test_self_attention_is_torchs_transformer_layer_over_the_real_positions():
    from qa_seq2seq.network.attention import SelfAttention

    torch.manual_seed(0)
    layer = SelfAttention(8, layers=2, heads=2).eval()
    values = torch.randn(3, 6, 8)
    lengths = torch.tensor([6, 4, 1])
    out = layer(values, lengths)
    for b, n in enumerate(lengths.tolist()):  # each row alone, unpadded, by torch's own layers
        alone = values[b:b + 1, :n]
        for block in layer.layers:
            alone = block(alone)
        torch.testing.assert_close(out[b, :n], alone[0], atol=1e-5, rtol=1e-5)
        assert (out[b, n:] == 0).all()
    longer = torch.cat([values, torch.randn(3, 3, 8)], 1)  # more padding changes nothing
    torch.testing.assert_close(layer(longer, lengths)[:, :6], out, atol=1e-5, rtol=1e-5)


def test_self_attention_heads_must_divide_the_encoder_output():
    with pytest.raises(ConfigError, match=r"model.net.self_attention_heads=5 must divide the "
                                          r"encoder's output size \(12\)"):
        tiny_model(self_attention_layers=1, self_attention_heads=5)
    with pytest.raises(ConfigError, match="model.net.self_attention_layers must be >= 0"):
        tiny_model(self_attention_layers=-1)
    model = tiny_model(attention=partial(Attention, "general"), self_attention_layers=1,
                       self_attention_heads=3)
    assert [n for n, _ in model.named_parameters() if "self_attention" in n][0] == \
        "encoder.self_attention.layers.0.self_attn.in_proj_weight"
