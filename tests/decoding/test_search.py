"""Search against trusted references: greedy, exhaustive enumeration, teacher forcing."""

import itertools
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from qa_seq2seq.decoding.search import beam_search, greedy_search, sample
from qa_seq2seq.network.attention import Attention
from tests.conftest import PIECES, follow_spans, random_batch, tiny_model

# Decoder variants whose state holds more than (h, c): the search must carry and reorder it all.
VARIANTS = {"plain": {}, "attention": {"attention": partial(Attention, "general")},
            "feeding+thinking": {"attention": partial(Attention, "bahdanau"),
                                 "input_feeding": True, "thinking_steps": 2},
            "copy": {"attention": partial(Attention, "general"), "copy": True},
            "copy+span+self-attention": {"attention": partial(Attention, "general"), "copy": True,
                                         "copy_span": True, "self_attention_layers": 1,
                                         "self_attention_heads": 2},
            "passage_qa": {"attention": partial(Attention, "general"), "copy": True,
                           "copy_span": True, "match_separator": "<sep>", "match_words": 3,
                           "match_pooling": True, "bidirectional_encoder": True,
                           "bridge": "linear"}}


def peaked_model(vocab_size=11, seed=0, cell="lstm", variant="plain"):
    """A random model with a confident (non-uniform) output distribution."""
    model = tiny_model(cell, vocab_size=vocab_size, seed=seed, **VARIANTS[variant]).eval()
    with torch.no_grad():
        model.decoder.output.weight.mul_(6.0)
        model.decoder.output.bias[EOS_ID] += 1.0  # answers of a few tokens
    follow_spans(model)
    if model.encoder.match is not None:  # <sep> (id 10) splits random batches into sides
        model.encoder.match.set_pieces(PIECES)
    return model


def teacher_forced_log_prob(model, src, lengths, tokens, finished=True):
    """log P(tokens [+ <eos>] | question) for one question, by one teacher-forced pass."""
    target = tokens + ([EOS_ID] if finished else [])
    tgt_in = torch.tensor([[BOS_ID] + target[:-1]])
    log_probs = F.log_softmax(model(src, lengths, tgt_in), -1)[0]
    return sum(log_probs[t, tok].item() for t, tok in enumerate(target))


@pytest.mark.parametrize("variant", VARIANTS)
def test_beam_size_one_equals_greedy(variant):
    model = peaked_model(variant=variant)
    src, lengths = random_batch(batch=8)
    greedy = greedy_search(model, src, lengths, max_length=8)
    beam = beam_search(model, src, lengths, beam_size=1, max_length=8)
    for g, b in zip(greedy, beam):
        assert g[0].tokens == b[0].tokens
        assert g[0].finished == b[0].finished
        assert g[0].score == pytest.approx(b[0].score, abs=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_score_is_the_teacher_forced_log_probability(search, variant):
    model = peaked_model(variant=variant)
    src, lengths = random_batch(batch=6)
    run = {"greedy": lambda: greedy_search(model, src, lengths, max_length=6),
           "beam": lambda: beam_search(model, src, lengths, beam_size=4, n_best=3, max_length=6),
           "sample": lambda: sample(model, src, lengths, seed=0, top_k=3, max_length=6)}[search]
    for b, hyps in enumerate(run()):
        for h in hyps:
            expected = teacher_forced_log_prob(model, src[b : b + 1], lengths[b : b + 1],
                                               h.tokens, h.finished)
            assert h.score == pytest.approx(expected, abs=1e-4)
            assert sum(h.token_log_probs) == pytest.approx(h.score, abs=1e-6)


@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_an_explicit_initial_state_is_searched_from(search):
    """Scores match teacher forcing from the same initial (h, c), and differ from the bridged
    encoder state's."""
    from qa_seq2seq.network.rnn import State

    model = peaked_model(variant="feeding+thinking")
    src, lengths = random_batch(batch=4)
    g = torch.Generator().manual_seed(5)
    initial = State(*(torch.randn(2, 4, 12, generator=g) for _ in range(2)))  # (L, B, H)
    run = {"greedy": greedy_search, "beam": partial(beam_search, beam_size=3, n_best=2),
           "sample": partial(sample, seed=0)}[search]
    results = run(model, src, lengths, max_length=6, initial_state=initial)
    default = run(model, src, lengths, max_length=6)
    assert [h[0].score for h in results] != [h[0].score for h in default]
    for b, hyps in enumerate(results):
        row = State(initial.h[:, b : b + 1], initial.c[:, b : b + 1])
        for h in hyps:
            target = h.tokens + ([EOS_ID] if h.finished else [])
            tgt_in = torch.tensor([[BOS_ID] + target[:-1]])
            log_probs = F.log_softmax(model(src[b : b + 1], lengths[b : b + 1], tgt_in,
                                            initial_state=row), -1)[0]
            expected = sum(log_probs[t, tok].item() for t, tok in enumerate(target))
            assert h.score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("search", [
    lambda m, s, n: greedy_search(m, s, n, max_length=8),
    lambda m, s, n: beam_search(m, s, n, beam_size=5, n_best=2, max_length=8),
])
@pytest.mark.parametrize("variant", VARIANTS)
def test_results_do_not_depend_on_batch_neighbours_or_size(search, variant):
    model = peaked_model(variant=variant)
    src, lengths = random_batch(batch=9, seed=3)
    together = search(model, src, lengths)
    alone = [search(model, src[b : b + 1, : lengths[b]], lengths[b : b + 1])[0]
             for b in range(9)]
    reordered_idx = torch.tensor([4, 0, 8, 2])
    subset = search(model, src[reordered_idx], lengths[reordered_idx])
    for b in range(9):
        assert [h.tokens for h in together[b]] == [h.tokens for h in alone[b]]
        for x, y in zip(together[b], alone[b]):
            assert x.score == pytest.approx(y.score, abs=1e-4)
    for row, b in enumerate(reordered_idx.tolist()):
        assert [h.tokens for h in subset[row]] == [h.tokens for h in together[b]]


def exhaustive(model, src, lengths, vocab_size, max_length):
    """Every answer up to max_length tokens (eos included), with its teacher-forced score."""
    emit = [t for t in range(vocab_size) if t not in (PAD_ID, BOS_ID, EOS_ID)]
    results = []
    for n in range(max_length):  # finished: n tokens + <eos>
        for tokens in itertools.product(emit, repeat=n):
            results.append((teacher_forced_log_prob(model, src, lengths, list(tokens)), tokens))
    for tokens in itertools.product(emit, repeat=max_length):  # cut at the limit
        results.append((teacher_forced_log_prob(model, src, lengths, list(tokens), False),
                        tokens))
    return sorted(results, reverse=True)


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_wide_beam_equals_exhaustive_search_on_a_tiny_vocabulary(seed):
    vocab_size, max_length = 6, 4  # emitted tokens: unk, 4, 5 (+ eos): 121 answers in all
    model = tiny_model(vocab_size=vocab_size, seed=seed).eval()
    with torch.no_grad():
        model.decoder.output.weight.mul_(2.0)
    src, lengths = random_batch(batch=2, vocab_size=vocab_size, max_len=4, seed=seed)
    # 108 = 3^3 * 4 candidates at the last step: every hypothesis fits in the beam.
    beams = beam_search(model, src, lengths, beam_size=108, n_best=8, max_length=max_length)
    greedy = greedy_search(model, src, lengths, max_length=max_length)
    for b in range(2):
        truth = exhaustive(model, src[b : b + 1], lengths[b : b + 1], vocab_size, max_length)
        assert [tuple(h.tokens) for h in beams[b]] == [t for _, t in truth[:8]]
        assert beam_search(model, src[b : b + 1], lengths[b : b + 1], beam_size=5,
                           max_length=max_length)[0][0].tokens == list(truth[0][1])
        for h, (score, _) in zip(beams[b], truth):
            assert h.score == pytest.approx(score, abs=1e-4)
        # On these models greedy misses the best answer: the comparison has teeth.
        assert greedy[b][0].score < truth[0][0] - 1.0


def test_never_emits_padding_or_bos_and_respects_min_and_max_length():
    model = tiny_model(vocab_size=11).eval()
    with torch.no_grad():  # make pad and bos the most likely tokens
        model.decoder.output.bias[PAD_ID] += 50
        model.decoder.output.bias[BOS_ID] += 50
        model.decoder.output.bias[EOS_ID] += 20
    src, lengths = random_batch(batch=6)
    for hyps in (greedy_search(model, src, lengths, min_length=2, max_length=5)
                 + beam_search(model, src, lengths, beam_size=3, n_best=3, min_length=2,
                               max_length=5)):
        for h in hyps:
            assert PAD_ID not in h.tokens and BOS_ID not in h.tokens
            assert len(h.tokens) >= 2 and len(h.token_log_probs) <= 5


def test_max_length_ratio_caps_by_question_length():
    model = tiny_model(vocab_size=11).eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] -= 50  # never stops by itself
    src, lengths = random_batch(batch=5)
    for b, hyps in enumerate(greedy_search(model, src, lengths, max_length=20,
                                           max_length_ratio=0.5)):
        assert len(hyps[0].tokens) == math.ceil(lengths[b].item() * 0.5)
        assert not hyps[0].finished


def test_n_best_sorted_and_length_penalties():
    model = peaked_model()
    src, lengths = random_batch(batch=4)
    for penalty in ("none", "average", "gnmt"):
        for hyps in beam_search(model, src, lengths, beam_size=5, n_best=5, max_length=6,
                                length_penalty=penalty):
            scores = [h.normalized_score for h in hyps]
            assert scores == sorted(scores, reverse=True)
            for h in hyps:
                n = len(h.token_log_probs)
                divisor = {"none": 1, "average": n, "gnmt": ((5 + n) / 6) ** 0.6}[penalty]
                assert h.normalized_score == pytest.approx(h.score / divisor)


def test_no_repeat_ngram_size():
    model = tiny_model(vocab_size=11).eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID] -= 50
    src, lengths = random_batch(batch=4)
    for hyps in beam_search(model, src, lengths, beam_size=3, max_length=12,
                            no_repeat_ngram_size=2):
        tokens = hyps[0].tokens
        bigrams = list(zip(tokens, tokens[1:]))
        assert len(bigrams) == len(set(bigrams))


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    model = tiny_model(vocab_size=11).eval()
    src, lengths = random_batch(batch=6)
    a = sample(model, src, lengths, seed=7, max_length=6)
    b = sample(model, src, lengths, seed=7, max_length=6)
    assert [h[0].tokens for h in a] == [h[0].tokens for h in b]
    greedy = greedy_search(model, src, lengths, max_length=6)
    top1 = sample(model, src, lengths, seed=1, top_k=1, max_length=6)
    nucleus = sample(model, src, lengths, seed=1, top_p=1e-6, max_length=6)
    assert [h[0].tokens for h in top1] == [h[0].tokens for h in greedy]
    assert [h[0].tokens for h in nucleus] == [h[0].tokens for h in greedy]


@pytest.mark.parametrize("kwargs,message", [
    ({"beam_size": 0}, "decode.beam_size must be >= 1"),
    ({"beam_size": 2, "n_best": 3}, "decode.n_best must be between 1 and beam_size=2"),
    ({"length_penalty": "wu"}, "decode.length_penalty=.wu."),
    ({"max_length": 0}, "decode.max_length must be >= 1"),
])
def test_bad_options_are_refused(kwargs, message):
    src, lengths = random_batch()
    with pytest.raises(ValueError, match=message):
        beam_search(tiny_model().eval(), src, lengths, **kwargs)


class TableModel:
    """A stand-in for a network whose next-token logits depend only on the step and the previous
    token (a random, peaked table): exhaustive search over it is exact and cheap, and its best
    answers are often long ones that finish after worse short ones."""

    def __init__(self, vocab_size: int, max_length: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.logits = 3 * torch.randn(max_length + 1, vocab_size, vocab_size, generator=generator)

    def encode(self, src, src_lengths):
        return src.new_zeros(src.size(0))  # the step each row is at

    def step(self, tokens, t):
        return self.logits[t, tokens], t + 1

    def reorder_state(self, t, order):
        return t[order]

    def score(self, tokens: tuple[int, ...], finished: bool) -> float:
        log_probs = F.log_softmax(self.logits, -1)
        path = (BOS_ID, *tokens, *([EOS_ID] if finished else []))
        return sum(log_probs[t, prev, tok].item() for t, (prev, tok) in enumerate(zip(path, path[1:])))


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_stops_only_when_no_live_answer_can_still_win(seed):
    vocab_size, max_length = 6, 4
    model = TableModel(vocab_size, max_length, seed)
    emit = [t for t in range(vocab_size) if t not in (PAD_ID, BOS_ID, EOS_ID)]
    truth = sorted(((model.score(tokens, n < max_length), tokens)
                    for n in range(max_length + 1) for tokens in itertools.product(emit, repeat=n)),
                   reverse=True)
    src, lengths = torch.tensor([[4]]), torch.tensor([1])
    (beams,) = beam_search(model, src, lengths, beam_size=108, n_best=3, max_length=max_length)
    assert [tuple(h.tokens) for h in beams] == [tokens for _, tokens in truth[:3]]
    for h, (score, _) in zip(beams, truth):
        assert h.score == pytest.approx(score, abs=1e-5)



def divisor(length: int, mode: str, alpha: float) -> float:
    """The length penalties as published (written here apart from search.py's)."""
    return {"none": 1.0, "average": float(length), "gnmt": ((5 + length) / 6) ** alpha}[mode]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("mode,alpha", [("none", 0.0), ("average", 0.0), ("gnmt", 0.6),
                                        ("gnmt", 2.0)])
@pytest.mark.parametrize("min_length,max_length,n_best", [(0, 4, 3), (2, 4, 2), (0, 2, 1),
                                                          (3, 4, 4)])
def test_a_wide_beam_ranks_answers_as_exhaustive_search_does(seed, mode, alpha, min_length,
                                                             max_length, n_best):
    """Every length penalty, min_length, max_length and n_best on a peaked table model: the
    n-best list, scores and normalised scores are those of enumerating every answer. The beam
    holds every hypothesis, so only the stop rule can make it differ."""
    vocab_size = 6
    model = TableModel(vocab_size, max_length, seed)
    emit = [t for t in range(vocab_size) if t not in (PAD_ID, BOS_ID, EOS_ID)]
    truth = []
    for n in range(max_length + 1):
        for tokens in itertools.product(emit, repeat=n):
            finished = n < max_length  # the limit cuts answers of max_length tokens
            if finished and n < min_length:
                continue  # <eos> is blocked before min_length tokens
            score = model.score(tokens, finished)
            truth.append((score / divisor(n + finished, mode, alpha), score, tokens))
    truth.sort(reverse=True)
    (beams,) = beam_search(model, torch.tensor([[4]]), torch.tensor([1]), beam_size=108,
                           n_best=n_best, max_length=max_length, min_length=min_length,
                           length_penalty=mode, alpha=alpha)
    assert [tuple(h.tokens) for h in beams] == [tokens for _, _, tokens in truth[:n_best]]
    for h, (normalized, score, _) in zip(beams, truth):
        assert (h.normalized_score, h.score) == (pytest.approx(normalized, abs=1e-5),
                                                 pytest.approx(score, abs=1e-5))


class ConstantModel:
    """Every step the same distribution over [pad, unk, bos, eos, A, B]; counts its steps."""

    def __init__(self, eos: float, a: float, b: float):
        self.logits = torch.tensor([1e-9, 1e-9, 1e-9, eos, a, b]).log()
        self.steps = 0

    def encode(self, src, src_lengths):
        return torch.zeros(src.size(0))

    def step(self, tokens, state):
        self.steps += 1
        return self.logits.expand(tokens.size(0), -1), state

    def reorder_state(self, state, order):
        return state[order]


@pytest.mark.parametrize("probs, mode, steps", [
    # <eos> first by far: nothing live can beat it, stop after one step.
    ((0.99, 0.005, 0.005), "none", 1),
    # Live A A A (log .607 x 3 = -1.497) still beats the first <eos> (log .223 = -1.501): the
    # exact rule of length_penalty=none stops only at step 4, although beam_size hypotheses
    # had finished at step 2.
    ((0.223, 0.607, 0.135), "none", 4),
    # With a penalty the bound assumes growth to max_length and would wait; the search stops
    # once beam_size (2) hypotheses have finished, at step 2, as fairseq does.
    ((0.4, 0.35, 0.25), "gnmt", 2),
])
def test_beam_search_stops_at_the_first_step_where_its_rule_allows(probs, mode, steps):
    """When the search stops, not only what it returns: the stop rule's every clause."""
    model = ConstantModel(*probs)
    beam_search(model, torch.tensor([[4]]), torch.tensor([1]), beam_size=2, n_best=1,
                length_penalty=mode)
    assert model.steps == steps


@pytest.mark.parametrize("search", [greedy_search, partial(sample, seed=0, top_k=1)])
def test_single_path_search_stops_when_every_question_has_ended(search):
    """Greedy and sampling stop at the step where the last row emits <eos>, not at the limit,
    and rank by the plain score (no length penalty: one answer per question)."""
    model = ConstantModel(0.6, 0.3, 0.1)  # <eos> first
    [[hyp]] = search(model, torch.tensor([[4]]), torch.tensor([1]), max_length=10)
    assert model.steps == 1 and hyp.tokens == [] and hyp.finished
    for limit in (1, 3):  # A forever: cut at max_length (1 is the least allowed)
        model = ConstantModel(0.1, 0.6, 0.3)
        [[hyp]] = search(model, torch.tensor([[4]]), torch.tensor([1]), max_length=limit)
        assert model.steps == limit and hyp.tokens == [4] * limit and not hyp.finished
        assert hyp.normalized_score == hyp.score == pytest.approx(limit * math.log(0.6))


@pytest.mark.parametrize("n, history, banned", [
    (1, [5], {5}),  # no token twice
    (1, [5, 6, 5], {5, 6}),
    (2, [5], set()),  # no bigram yet
    (2, [5, 6, 5], {6}),  # "5 6" seen: after 5, 6 is banned
    (3, [5, 6], set()),
    (3, [5, 6, 7, 5, 6], {7}),
    (3, [5, 6, 7, 5], set()),  # "7 5" never continued
])
def test_repeated_ngrams_are_banned_by_hand(n, history, banned):
    from qa_seq2seq.decoding.hypotheses import block_repeated_ngrams

    log_probs = torch.zeros(2, 9)
    block_repeated_ngrams(log_probs, torch.tensor([history, history]), n)
    assert {i for i in range(9) if log_probs[0, i] == -math.inf} == banned
    assert torch.equal(log_probs[0], log_probs[1])
