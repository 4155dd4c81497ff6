"""module.py: the LightningModule's own rules, in-process (the runs in test_train and test_faults
exercise it through the Trainer)."""

import random
from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from qa_seq2seq.data.batching import collate
from qa_seq2seq.data.tokenizer import PAD_ID, Tokenizer
from qa_seq2seq.decoding.checkpoint import PAYLOAD_KEY
from qa_seq2seq.decoding.search import greedy_search
from qa_seq2seq.errors import ConfigError
from qa_seq2seq.network.sharing import Sharing
from qa_seq2seq.training.module import Seq2SeqModule
from tests.conftest import tiny_model

TOKENIZER = Tokenizer.train(["abcdefg hijk"] * 50, vocab_size=20, model_type="char")


def module(**kwargs) -> Seq2SeqModule:
    return Seq2SeqModule(tiny_model(vocab_size=TOKENIZER.vocab_size), TOKENIZER,
                         partial(torch.optim.SGD, lr=0.1), partial(greedy_search, max_length=4),
                         **kwargs)


BATCH = collate([{"src_ids": [5, 6, 7], "tgt_ids": [8], "index": 0},
                 {"src_ids": [9], "tgt_ids": [10, 11, 12, 13], "index": 1}])


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_loss_is_the_mean_over_answer_tokens_with_smoothing_by_hand(smoothing):
    m = module()
    log_probs = F.log_softmax(m(BATCH), -1)  # (B, T, V)
    real = BATCH.tgt_out != PAD_ID
    nll = -log_probs.gather(-1, BATCH.tgt_out[..., None])[..., 0]
    uniform = -log_probs.mean(-1)  # cross-entropy against the uniform distribution
    expected = ((1 - smoothing) * nll + smoothing * uniform)[real].mean()
    assert real.sum() == 7  # 2 + 5 answer tokens with <eos>; padding is not counted
    torch.testing.assert_close(m.model_step(BATCH, smoothing), expected)


def test_the_optimizer_gets_the_trainable_parameters_only():
    m = module(freeze=["encoder.*"])
    (group,) = m.configure_optimizers().param_groups
    trainable = {id(p) for n, p in m.net.named_parameters() if not n.startswith("encoder.")}
    assert {id(p) for p in group["params"]} == trainable
    assert all(not p.requires_grad for p in m.net.encoder.parameters())


def one_adamw_step_without_gradient(no_decay, **net_options) -> dict[str, bool]:
    """Which parameters one AdamW step (lr 0.1, decay 0.5) changed. With no gradient Adam's
    update is zero, so only the decay moves a weight: by the factor 1 - 0.05."""
    m = Seq2SeqModule(tiny_model(vocab_size=TOKENIZER.vocab_size, **net_options), TOKENIZER,
                      partial(torch.optim.AdamW, lr=0.1, weight_decay=0.5),
                      partial(greedy_search, max_length=4), no_decay=no_decay)
    before = {n: p.detach().clone() for n, p in m.net.named_parameters(remove_duplicate=False)}
    optimizer = m.configure_optimizers()
    for p in m.net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for n, p in m.net.named_parameters(remove_duplicate=False):
        assert torch.equal(p, before[n]) or torch.allclose(p, before[n] * 0.95)
    return {n: not torch.equal(p, before[n])
            for n, p in m.net.named_parameters(remove_duplicate=False)}


def test_no_decay_spares_the_parameters_it_names_from_weight_decay():
    decayed = one_adamw_step_without_gradient(["*embedding*", "decoder.output.bias"])
    spared = {"encoder.embedding.weight", "decoder.embedding.weight", "decoder.output.bias"}
    assert {n for n, moved in decayed.items() if not moved} == spared
    assert all(one_adamw_step_without_gradient([]).values())  # without it, every weight decays


def test_no_decay_spares_a_shared_parameter_by_any_of_its_names():
    decayed = one_adamw_step_without_gradient(["decoder.embedding.weight"],
                                              sharing=Sharing(embeddings=True))
    assert {n for n, moved in decayed.items() if not moved} == {"encoder.embedding.weight",
                                                                "decoder.embedding.weight"}


def test_a_no_decay_pattern_that_matches_nothing_is_refused_at_construction():
    with pytest.raises(ConfigError, match=r"optimizer.no_decay: pattern\(s\) \['embeding\*'\]"):
        module(no_decay=["embeding*"])


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no")
@pytest.mark.train
def test_decay_from_step_turns_weight_decay_on_at_that_step_and_spares_no_decay():
    m = Seq2SeqModule(tiny_model(vocab_size=TOKENIZER.vocab_size), TOKENIZER,
                      partial(torch.optim.AdamW, lr=0.01, weight_decay=0.5),
                      partial(greedy_search, max_length=4), no_decay=["*embedding*"],
                      decay_from_step=2)
    seen = []

    class Record(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append([group["weight_decay"] for group in optimizer.param_groups])

    trainer = L.Trainer(max_steps=4, callbacks=[Record()], logger=False, limit_val_batches=0,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(m, torch.utils.data.DataLoader([BATCH] * 4, batch_size=None))
    assert seen == [[0.0, 0.0], [0.0, 0.0], [0.5, 0.0], [0.5, 0.0]]


def test_set_up_runs_init_then_warm_start_then_freeze():
    calls = []

    def init(net):
        calls.append(("init", net.encoder.embedding.weight.requires_grad))

    def init_from(net):
        calls.append(("init_from", net.encoder.embedding.weight.requires_grad))

    m = module(init=init, init_from=init_from, freeze=["encoder.embedding.*"])
    assert calls == [("init", True), ("init_from", True)]  # both saw the unfrozen network
    assert not m.net.encoder.embedding.weight.requires_grad


def test_an_unknown_nonfinite_policy_is_refused():
    with pytest.raises(ConfigError, match=r"nonfinite='warn': use 'error' or 'skip'"):
        module(nonfinite="warn")


def test_checkpoints_carry_the_payload_tokenizer_and_random_states():
    m = module(payload={"net": {"hidden_size": 12}, "data": {"reverse_target": True}})
    assert m.reverse_target and not m.reverse_source
    checkpoint = {}
    torch.manual_seed(7)
    random.seed(7)
    m.on_save_checkpoint(checkpoint)
    after_save = torch.rand(3), random.random()
    assert checkpoint[PAYLOAD_KEY] == {"net": {"hidden_size": 12}, "data": {"reverse_target": True},
                                       "tokenizer": TOKENIZER.model_proto}
    torch.manual_seed(99)
    random.seed(99)
    m.on_load_checkpoint(checkpoint)  # dropout and sampling continue as if never stopped
    assert torch.equal(torch.rand(3), after_save[0]) and random.random() == after_save[1]


def test_compile_marks_every_recurrent_layer_and_is_off_by_default():
    from qa_seq2seq.network.rnn import Recurrent

    for flag in (False, True):
        layers = [m for m in module(compile=flag).net.modules() if isinstance(m, Recurrent)]
        assert len(layers) == 2 and all(layer.compiled is flag for layer in layers)


def test_validation_logs_the_copy_switch_over_the_real_answer_tokens():
    from qa_seq2seq.network.attention import Attention

    net = tiny_model(vocab_size=TOKENIZER.vocab_size, attention=partial(Attention, "general"),
                     copy=True)
    m = Seq2SeqModule(net, TOKENIZER, partial(torch.optim.SGD, lr=0.1),
                      partial(greedy_search, max_length=4))
    m.eval()
    logged = {}
    m.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    m.log_dict = lambda values, **kwargs: logged.update({k: float(v) for k, v in values.items()})
    with torch.no_grad():
        m.validation_step(BATCH, 0)
        m.on_validation_epoch_end()
        read = net.read(BATCH.src, BATCH.src_lengths, BATCH.tgt_in)
    real = BATCH.tgt_out != PAD_ID
    assert logged["val/copy_switch"] == pytest.approx(float(read.generate[real].mean()))
    assert logged["val/copy_switch"] != pytest.approx(float(read.generate.mean()))  # padding out
    with torch.no_grad():
        assert logged["val/loss"] == pytest.approx(float(m.model_step(BATCH)), rel=1e-5)
