from pathlib import Path

import pytest

from qa_seq2seq.decoding.checkpoint import read_checkpoint
from qa_seq2seq.network.bridge import BRIDGES
from qa_seq2seq.parameters import from_checkpoint, from_config, main


def test_table_from_config_shows_scopes_state_initializers_gates_and_sharing():
    table = from_config(["model/net/cell=peephole_lstm", "model/init=orthogonal",
                         "model/net/sharing=embeddings", "model.freeze=[encoder.*]",
                         "model.net.num_layers=1", "model.net.hidden_size=32", "model.net.vocab_size=50"])
    rows = {tuple(line.split()[:2]): line for line in table.splitlines()[2:] if line.strip()}
    hh = rows[("decoder.rnn", "weight_hh_l0")]
    assert "trainable" in hh and "orthogonal" in hh
    assert "input[0:32] forget[32:64] cell[64:96] output[96:128]" in hh
    assert "frozen" in rows[("encoder.rnn", "weight_ih_l0")]
    assert "shared with decoder.embedding.weight" in rows[("encoder.embedding", "weight")]
    assert "forget gate 1" in rows[("encoder.rnn", "bias_ih_l0")]  # read from the tensors
    assert "forget gate 0" in rows[("encoder.rnn", "bias_hh_l0")]
    assert "input[0:32] forget[32:64] output[64:96]" in rows[("decoder.rnn", "weight_peephole_l0")]
    # Frozen: the 50x64 embedding, and the encoder's peephole LSTM: 128x64 + 128x32 kernels,
    # 2 x 128 biases, 3 x 32 peepholes.
    assert "frozen: 15,840" in table


def test_named_scopes_show_under_their_names():
    table = from_config(["model.net.scopes.encoder=question_encoder", "model/init=orthogonal",
                         "model.freeze=[question_encoder.embedding.*]", "model.net.vocab_size=50"])
    rows = {tuple(line.split()[:2]): line for line in table.splitlines()[2:] if line.strip()}
    assert "frozen" in rows[("question_encoder.embedding", "weight")]
    assert "orthogonal" in rows[("question_encoder.rnn", "weight_hh_l0")]
    assert not any(scope.startswith("encoder") for scope, _ in rows)


def test_table_from_checkpoint_and_cli(smoke_run, capsys):
    run_dir, _ = smoke_run
    table = from_checkpoint(str(run_dir))
    assert "best.ckpt" in table.splitlines()[0] and "torch_default" in table
    trained = read_checkpoint(run_dir).state_dict["encoder.rnn.bias_ih_l0"]
    forget = trained[trained.numel() // 4 : trained.numel() // 2]  # gates i, f, g, o
    row = next(line for line in table.splitlines() if "bias_ih_l0" in line and "encoder" in line)
    assert f"forget gate mean {forget.mean().item():.3g}" in row  # the trained values
    main(["--checkpoint", str(run_dir)])
    assert "trainable:" in capsys.readouterr().out


def test_attention_and_thinking_parameters_show_under_the_decoder_scope():
    table = from_config(["model/net/attention=bahdanau", "model.net.input_feeding=true",
                         "model.net.thinking_steps=2", "model/init=glorot_uniform",
                         "model.net.num_layers=1", "model.net.hidden_size=32", "model.net.vocab_size=50"])
    rows = {tuple(line.split()[:2]): line for line in table.splitlines()[2:] if line.strip()}
    assert "32x32" in rows[("decoder.attention.key", "weight")]
    assert "glorot_uniform" in rows[("decoder.attention.query", "weight")]
    assert "zeros" in rows[("decoder.attention.query", "bias")]
    assert "1x32" in rows[("decoder.attention.v", "weight")]
    assert "32x64" in rows[("decoder.attention.out", "weight")]  # W_c [context; h]
    assert "64" in rows[("decoder", "thinking")].split()[2]
    # Input feeding: the decoder reads the embedding and the previous attentional vector.
    assert "128x96" in rows[("decoder.rnn", "weight_ih_l0")]


def test_the_readme_cli_form_of_init_overrides_works():
    table = from_config(["model/init=glorot_uniform", "model.net.vocab_size=50",
                         "model.init.overrides={decoder.*.weight_hh*: orthogonal, "
                         "*embedding*: {name: truncated_normal, std: 0.01}}"])
    rows = {tuple(line.split()[:2]): line for line in table.splitlines()[2:] if line.strip()}
    assert "orthogonal" in rows[("decoder.rnn", "weight_hh_l1")]
    assert "glorot_uniform" in rows[("encoder.rnn", "weight_hh_l1")]
    assert "truncated_normal(std=0.01)" in rows[("encoder.embedding", "weight")]


NET_CONF = Path(__file__).resolve().parents[1] / "conf" / "model" / "net"
SMALL = ["model.net.vocab_size=30", "model.net.embedding_size=16", "model.net.hidden_size=16"]
CHOICES = [f"model/net/{group}={option.stem}" for group in ("cell", "attention", "sharing")
           for option in sorted((NET_CONF / group).glob("*.yaml"))] + \
          [f"model.net.bridge={bridge}" for bridge in BRIDGES]


@pytest.mark.parametrize("choice", CHOICES)
def test_every_cell_bridge_attention_and_sharing_choice_is_inspected(choice):
    table = from_config([*SMALL, choice])
    rows = [line.split() for line in table.splitlines()[2:] if line.strip()]
    names = {f"{row[0]}.{row[1]}" for row in rows if len(row) > 2}
    assert "decoder.output.weight" in names or "shared" in table
    if "bridge=linear" in choice:
        assert any(name.startswith("bridge.") for name in names)
    if "attention=" in choice and not choice.endswith("none"):
        assert any(name.startswith("decoder.attention.") for name in names)
    assert "trainable:" in table


def test_config_errors_are_one_message_and_exit_2(caplog):
    for argv in (["model.net.nokey=3"], ["model/net/cell=nope"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
        assert record.getMessage().startswith("error: ") and "Traceback" not in record.getMessage()
        caplog.clear()
