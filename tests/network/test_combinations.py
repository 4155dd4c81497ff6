"""Every model/net/cell (per side) x model/net/sharing x model.net.bridge: valid ones train,
others explain."""

import itertools
import random
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from qa_seq2seq.network.attention import Attention
from qa_seq2seq.network.builder import build_network
from qa_seq2seq.network.model import Seq2Seq
from qa_seq2seq.network.sharing import Sharing
from tests.conftest import CELLS, random_batch

SHARINGS = {"none": {}, "embeddings": {"embeddings": True}, "tied_output": {"tied_output": True},
            "all": {"embeddings": True, "tied_output": True},
            "encoder_decoder": {"encoder_decoder": True}}
BRIDGES = ["state", "hidden_only", "linear", "none"]
HAS_C = {"lstm": True, "peephole_lstm": True, "layernorm_lstm": True, "gru": False, "rnn": False}
COMBOS = list(itertools.product(CELLS, CELLS, SHARINGS, BRIDGES))


def expected_error(enc, dec, sharing, bridge):
    """The independent rule: what must fail, and with which key named (bridge is checked first)."""
    if bridge == "state" and HAS_C[enc] != HAS_C[dec]:
        return "model.net.bridge=state"
    if sharing == "encoder_decoder" and enc != dec:
        return "model/net/sharing=encoder_decoder"
    return None


@pytest.mark.parametrize("enc,dec,sharing,bridge", COMBOS,
                         ids=["-".join(c) for c in COMBOS])
def test_combination(enc, dec, sharing, bridge):
    torch.manual_seed(0)
    build = partial(build_network, 9, partial(CELLS[enc]), embedding_size=8, hidden_size=8, num_layers=1,
                    decoder_cell=partial(CELLS[dec]), bridge=bridge,
                    sharing=Sharing(**SHARINGS[sharing]))
    error = expected_error(enc, dec, sharing, bridge)
    if error:
        with pytest.raises(ValueError, match=error):
            build()
        return
    model = build()
    src, lengths = random_batch(batch=3, vocab_size=9, max_len=4)
    tgt = torch.randint(4, 9, (3, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.clone() for p in model.parameters()]
    loss = F.cross_entropy(model(src, lengths, tgt).flatten(0, 1), tgt.flatten())
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()) if b.grad is not None)


DECODER_OPTIONS = {
    "dot": {"attention": partial(Attention, "dot")},
    "general+feeding": {"attention": partial(Attention, "general"), "input_feeding": True},
    "bahdanau+thinking": {"attention": partial(Attention, "bahdanau"), "thinking_steps": 2},
    "general+bottom": {"attention": partial(Attention, "general"), "attend_from": "bottom",
                       "num_layers": 2},
}
ATTENTION_COMBOS = list(itertools.product(CELLS, SHARINGS, DECODER_OPTIONS))


@pytest.mark.parametrize("cell,sharing,options", ATTENTION_COMBOS,
                         ids=["-".join(c) for c in ATTENTION_COMBOS])
def test_attention_composes_with_every_cell_and_sharing(cell, sharing, options):
    torch.manual_seed(0)
    build = partial(build_network, 9, partial(CELLS[cell]), embedding_size=8, hidden_size=8,
                    sharing=Sharing(**SHARINGS[sharing]), **{"num_layers": 1,
                                                             **DECODER_OPTIONS[options]})
    if sharing == "encoder_decoder" and options == "general+feeding":
        # The fed decoder reads [embedding; attentional vector]: not the encoder's input size.
        with pytest.raises(ValueError, match="model/net/sharing=encoder_decoder.*input_size"):
            build()
        return
    if sharing == "encoder_decoder" and options == "general+bottom":  # two decoder RNNs
        with pytest.raises(ValueError, match="model/net/sharing=encoder_decoder.*attend_from"):
            build()
        return
    model = build()
    src, lengths = random_batch(batch=3, vocab_size=9, max_len=4)
    tgt = torch.randint(4, 9, (3, 3))
    loss = F.cross_entropy(model(src, lengths, tgt).flatten(0, 1), tgt.flatten())
    loss.backward()
    assert torch.isfinite(loss)
    attention = model.decoder.attention
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attention.parameters())


# ----- pairwise over every option, with sizes that differ ------------------------------------
# Above, every size is 8, so a mix-up of embedding, hidden, bidirectional or context sizes could
# never show. Here each pair of option values appears in at least one case (a greedy covering
# array, fixed by its seed), with sizes that differ from each other. The rule is not an oracle of
# which combinations are valid: each case either trains one step (finite loss, every parameter
# with a gradient moves, teacher forcing and a greedy search agree on the first token) or is
# refused at build time by a ConfigError naming a model key. A shape error, or a refusal that
# names no key, fails.
FACTORS = {
    "encoder_cell": list(CELLS), "decoder_cell": list(CELLS), "sharing": list(SHARINGS),
    "bridge": BRIDGES, "bidirectional_encoder": [False, True], "embedding_size": [8, 12],
    "hidden_size": [8, 12], "num_layers": [1, 2], "encoder_hidden_size": [None, None, 7],
    "attention": [None, "dot", "general", "bahdanau"], "input_feeding": [False, False, True],
    "feed_encoder_state": [False, True, "pooled"], "thinking_steps": [0, 2],
}  # a value listed twice is drawn twice as often: more of the cases are valid models


def pairwise_cases(seed: int = 0, candidates: int = 60) -> list[dict]:
    rng = random.Random(seed)
    names = list(FACTORS)

    def pairs(case: dict) -> set[tuple]:
        return {(a, case[a], b, case[b]) for i, a in enumerate(names) for b in names[i + 1:]}

    uncovered = {(a, va, b, vb) for i, a in enumerate(names) for b in names[i + 1:]
                 for va in FACTORS[a] for vb in FACTORS[b]}
    cases = []
    while uncovered:
        draws = [{n: rng.choice(FACTORS[n]) for n in names} for _ in range(candidates)]
        best = max(draws, key=lambda case: len(pairs(case) & uncovered))
        if not pairs(best) & uncovered:  # force one uncovered pair in
            a, va, b, vb = min(uncovered, key=repr)
            best.update({a: va, b: vb})
        uncovered -= pairs(best)
        cases.append(best)
    return cases


PAIRWISE = pairwise_cases()


def build_case(case: dict) -> Seq2Seq:
    enc_extra = {"hidden_size": case["encoder_hidden_size"]} if case["encoder_hidden_size"] else {}
    attention = partial(Attention, case["attention"]) if case["attention"] else None
    return build_network(
        9, partial(CELLS[case["decoder_cell"]]), embedding_size=case["embedding_size"],
        hidden_size=case["hidden_size"], num_layers=case["num_layers"],
        encoder_cell=partial(CELLS[case["encoder_cell"]], **enc_extra),
        bidirectional_encoder=case["bidirectional_encoder"], bridge=case["bridge"],
        feed_encoder_state=case["feed_encoder_state"], attention=attention,
        input_feeding=case["input_feeding"], thinking_steps=case["thinking_steps"],
        sharing=Sharing(**SHARINGS[case["sharing"]]))


def test_pairwise_cases_cover_every_pair_and_mostly_build():
    assert 25 <= len(PAIRWISE) <= 60
    built = 0
    for case in PAIRWISE:
        try:
            build_case(case)
            built += 1
        except ValueError:
            pass
    assert built >= len(PAIRWISE) // 4, built  # the walk is not all refusals


@pytest.mark.parametrize("case", PAIRWISE, ids=[f"case{i}" for i in range(len(PAIRWISE))])
def test_pairwise_case_trains_or_is_refused_by_key(case):
    from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
    from qa_seq2seq.decoding.search import greedy_search
    from qa_seq2seq.errors import ConfigError

    torch.manual_seed(0)
    try:
        model = build_case(case)
    except ConfigError as e:
        assert "model." in str(e) or "model/" in str(e), str(e)
        return
    src, lengths = random_batch(batch=3, vocab_size=9, max_len=5)
    tgt = torch.randint(4, 9, (3, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.clone() for p in model.parameters()]
    logits = model(src, lengths, tgt)
    assert logits.shape == (3, 3, 9)
    loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten())
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()) if b.grad is not None)
    model.eval()
    first = greedy_search(model, src, lengths, max_length=1)
    with torch.no_grad():
        forced = model(src, lengths, torch.full((3, 1), BOS_ID))[:, 0]  # first step, teacher-forced
    forced[:, [PAD_ID, BOS_ID]] = -float("inf")  # never emitted by a search
    assert [h[0].tokens[0] if h[0].tokens else EOS_ID for h in first] == forced.argmax(-1).tolist()
