"""ONNX export and the torch-free runtime: the same answers and scores as qa_seq2seq.decoding.search."""

import json
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from qa_seq2seq.decoding.answerer import Answerer
from qa_seq2seq.decoding.search import beam_search, greedy_search
from qa_seq2seq.deployment import runtime
from qa_seq2seq.deployment.onnx_graphs import export_graphs
from qa_seq2seq.export import export
from qa_seq2seq.network.attention import Attention
from qa_seq2seq.network.rnn import GRU
from qa_seq2seq.network.sharing import Sharing
from tests.conftest import follow_spans, random_batch, tiny_model

pytest.importorskip("onnx", reason="the export extra is not installed: pip install -e '.[export]'")
pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install -e '.[export]'")

QUESTIONS = ["What is 3 plus 4?", "Where is Mary?", "Which is larger, 31 or 13?",
             "Count the letters in apple.", "What is 12 minus 5?"]
CELL_BRIDGE = {f"{cell}-{bridge}": {"cell": cell, "bridge": bridge}
               for cell in ("lstm", "peephole_lstm", "layernorm_lstm", "gru", "rnn")
               for bridge in ("state", "hidden_only", "linear", "none")}
VARIANTS = {  # every cell x bridge, and each option that changes what the graphs carry
    **CELL_BRIDGE,
    "one-layer": {"num_layers": 1},
    "bidirectional": {"bidirectional_encoder": True, "bridge": "linear"},
    "gru-encoder-lstm-decoder": {"encoder_cell": partial(GRU), "bridge": "linear"},
    "feed_encoder_state": {"feed_encoder_state": True},
    "pooled+dot": {"feed_encoder_state": "pooled", "attention": partial(Attention, "dot")},
    "dot": {"attention": partial(Attention, "dot")},
    "general+input-feeding": {"attention": partial(Attention, "general"), "input_feeding": True},
    "general+attend-from-bottom": {"attention": partial(Attention, "general"),
                                   "attend_from": "bottom"},
    "bahdanau+bidirectional-peephole": {"cell": "peephole_lstm", "bidirectional_encoder": True,
                                        "bridge": "linear",
                                        "attention": partial(Attention, "bahdanau")},
    "thinking": {"thinking_steps": 2, "cell": "layernorm_lstm"},
    "number_places": {"number_places": True, "attention": partial(Attention, "dot")},
    "number_values": {"number_places": True, "number_values": True,
                      "attention": partial(Attention, "dot")},
    "general+copy": {"attention": partial(Attention, "general"), "copy": True},
    "bahdanau+input-feeding+copy": {"attention": partial(Attention, "bahdanau"),
                                    "input_feeding": True, "copy": True},
    "match+copy": {"match_separator": "b", "attention": partial(Attention, "dot"), "copy": True},
    "match-words+pooling+copy": {"match_separator": "b", "match_words": 3, "match_pooling": True,
                         "attention": partial(Attention, "dot"), "copy": True},
    "copy+span": {"attention": partial(Attention, "general"), "copy": True, "copy_span": True},
    "passage_qa": {"attention": partial(Attention, "general"), "copy": True, "copy_span": True,
                   "match_separator": "b", "match_words": 3, "match_pooling": True,
                   "bidirectional_encoder": True, "bridge": "linear"},
    "self-attention": {"attention": partial(Attention, "general"), "self_attention_layers": 2,
                       "self_attention_heads": 2, "bidirectional_encoder": True, "bridge": "linear"},
    "sharing": {"sharing": Sharing(embeddings=True, tied_output=True, encoder_decoder=True),
                "embedding_size": 12},
}


def peaked(seed=0, cell="lstm", **options):
    """A tiny random model whose output distributions are far from uniform, so the searches
    take different paths and ties do not decide them."""
    model = tiny_model(cell, seed=seed, **options).eval()
    if model.encoder.places is not None:  # random batches then hold numbers, read backwards
        model.encoder.places.set_pieces(["<pad>", "<unk>", "<s>", "</s>", "1", "2", ".", "3", "a",
                                         "4", "b"], reversed_source=True)
    if model.encoder.match is not None:  # piece 10 splits random batches into sides
        model.encoder.match.set_pieces(["<pad>", "<unk>", "<s>", "</s>", "▁1", "2", "▁3", "4",
                                        "▁5", "6", "b"])
    with torch.no_grad():
        model.decoder.output.weight.mul_(6)
    follow_spans(model)
    return model


def search_both(model, folder, search, np_search, **options):
    src, lengths = random_batch(batch=6, max_len=7, seed=1)
    expected = search(model, src, lengths, max_length=6, **options)
    got = np_search(runtime.OnnxModel(folder, json.loads((folder / "graphs.json").read_text())),
                    src.numpy(), lengths.numpy(), max_length=6, **options)
    return expected, got


def assert_same(expected, got):
    assert len(expected) == len(got)
    for want, have in zip(expected, got):
        assert [h.tokens for h in want] == [h.tokens for h in have]
        assert [h.finished for h in want] == [h.finished for h in have]
        for a, b in zip(want, have):
            assert a.score == pytest.approx(b.score, abs=1e-4)
            assert a.normalized_score == pytest.approx(b.normalized_score, abs=1e-4)
            assert a.token_log_probs == pytest.approx(b.token_log_probs, abs=1e-4)


pytestmark = pytest.mark.xdist_group(__name__)  # one xdist worker: module fixtures built once


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each variant's graphs, exported once: (model, folder)."""
    cache = {}

    def get(name):
        if name not in cache:
            model, folder = peaked(**VARIANTS[name]), tmp_path_factory.mktemp(name)
            graphs = export_graphs(model, folder, max_source_length=9)
            (folder / "graphs.json").write_text(json.dumps(graphs))
            cache[name] = model, folder
        return cache[name]

    return get


# The default run covers every cell and every bridge; the other pairs run with -m slow.
DEFAULT_PAIRS = {"lstm-state", "lstm-linear", "peephole_lstm-hidden_only", "layernorm_lstm-none",
                 "gru-state", "gru-linear", "rnn-hidden_only", "rnn-none"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in CELL_BRIDGE.keys() - DEFAULT_PAIRS
    else name for name in VARIANTS])
def test_greedy_and_beam_match_the_torch_searches(exported, name):
    model, folder = exported(name)
    assert_same(*search_both(model, folder, greedy_search, runtime.greedy_search))
    assert_same(*search_both(model, folder, beam_search, runtime.beam_search, beam_size=5,
                             n_best=3))


def test_beam_search_keeps_one_memory_row_per_question(exported):
    """The step graph serves a question's k rows from one memory row: the runtime never
    repeats the encoder outputs per hypothesis, and runs the first step once per question."""
    model, folder = exported("bahdanau+bidirectional-peephole")
    onnx_model = runtime.OnnxModel(folder, json.loads((folder / "graphs.json").read_text()))
    rows, step = [], onnx_model.step

    def spy(tokens, state):
        rows.append((tokens.shape[0], state["memory_keys"].shape[0], state["memory_mask"].shape[0]))
        return step(tokens, state)

    onnx_model.step = spy
    src, lengths = random_batch(batch=6, max_len=7, seed=1)
    got = runtime.beam_search(onnx_model, src.numpy(), lengths.numpy(), beam_size=5, n_best=3,
                              max_length=6)
    assert_same(beam_search(model, src, lengths, beam_size=5, n_best=3, max_length=6), got)
    assert rows[0] == (6, 6, 6)  # the first step once per question, as the torch search
    assert all(hypotheses == 5 * keys == 5 * masks for hypotheses, keys, masks in rows[1:])

    # An export from before this, whose step graph takes a memory row per state row (no
    # "grouped_memory" in its description), is still searched right: the memory is repeated.
    rows.clear()
    onnx_model.grouped_memory = False
    got = runtime.beam_search(onnx_model, src.numpy(), lengths.numpy(), beam_size=5, n_best=3,
                              max_length=6)
    assert_same(beam_search(model, src, lengths, beam_size=5, n_best=3, max_length=6), got)
    assert rows and all(hypotheses == keys == masks for hypotheses, keys, masks in rows)


@pytest.mark.parametrize("options", [
    {"length_penalty": "gnmt", "alpha": 0.8, "n_best": 2},
    {"length_penalty": "average", "min_length": 2},
    {"no_repeat_ngram_size": 1, "max_length_ratio": 0.5},
])
def test_beam_options_match(exported, options):
    model, folder = exported("general+input-feeding")
    assert_same(*search_both(model, folder, beam_search, runtime.beam_search, beam_size=4,
                             **options))


def test_a_loop_cell_encoder_is_exported_per_length_bucket(exported):
    """Custom cells unroll their loop: one encoder per bucket, and the runtime pads to the
    bucket (8, then 9 = the longest question here); a longer question is refused."""
    model, folder = exported("bahdanau+bidirectional-peephole")
    graphs = json.loads((folder / "graphs.json").read_text())
    assert graphs["encoders"] == {"8": "encoder_8.onnx", "9": "encoder_9.onnx"}
    onnx_model = runtime.OnnxModel(folder, graphs)
    for length in (3, 8, 9):
        src = torch.randint(4, 11, (2, length))
        lengths = torch.tensor([length, 1])
        expected = runtime.greedy_search(onnx_model, src.numpy(), lengths.numpy())
        assert [h[0].tokens for h in expected] == \
            [h[0].tokens for h in greedy_search(model, src, lengths)]
    with pytest.raises(ValueError, match="longer than the longest this export takes"):
        onnx_model.encode(np.full((1, 10), 4), np.array([10]))


@pytest.fixture(scope="module")
def onnx_folder(smoke_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx") / "export"
    export(smoke_run[0], folder, format="onnx")
    return folder


@pytest.mark.cli
def test_the_cli_answers_an_onnx_export_as_the_run(smoke_run, onnx_folder):
    def decode(*args):
        result = subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", "--format", "jsonl",
                                 *args], input="\n".join(QUESTIONS).encode(),
                                capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    assert sorted(p.name for p in onnx_folder.iterdir()) == \
        ["encoder.onnx", "model.json", "step.onnx", "tokenizer.model"]
    for search in (["--decode", "greedy"], ["--decode", "beam", "beam_size=5", "n_best=3"]):
        onnx = decode("--model", str(onnx_folder), *search)
        torch_ = decode("--checkpoint", str(smoke_run[0]), *search)
        assert [r["answer"] for r in onnx] == [r["answer"] for r in torch_]
        for a, b in zip(onnx, torch_):
            assert [h["answer"] for h in a["n_best"]] == [h["answer"] for h in b["n_best"]]
            assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_the_python_api_answers_like_the_answerer(smoke_run, onnx_folder):
    answers = runtime.OnnxAnswerer(onnx_folder, "beam", beam_size=3).answer(QUESTIONS)
    expected = Answerer.from_checkpoint(smoke_run[0], "beam", beam_size=3).answer(QUESTIONS)
    assert [a.text for a in answers] == [a.text for a in expected]
    assert [a.score for a in answers] == pytest.approx([a.score for a in expected], abs=1e-4)


BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'torch' or name.startswith('torch.'):\n"
    "            raise ImportError('torch is blocked in this test')\n"
    "sys.meta_path.insert(0, Block())\n"
)


@pytest.mark.cli
def test_the_runtime_never_imports_torch(onnx_folder):
    """Run in a subprocess where importing torch fails: the runtime answers regardless."""
    script = BLOCK_TORCH + (
        "from qa_seq2seq.deployment.runtime import OnnxAnswerer\n"
        f"qa = OnnxAnswerer({str(onnx_folder)!r}, 'beam', beam_size=2)\n"
        "print(len(qa.answer(['What is 3 plus 4?', 'Where is Mary?'])))\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


@pytest.mark.cli
def test_the_cli_decodes_an_onnx_export_without_torch(onnx_folder):
    script = BLOCK_TORCH + (
        "import runpy\n"
        f"sys.argv = ['qa-seq2seq-decode', '--model', {str(onnx_folder)!r}]\n"
        "runpy.run_module('qa_seq2seq.decode', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], input="What is 3 plus 4?\nWhere?\n",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_int8_quantization_is_smaller_and_still_answers(smoke_run, onnx_folder, tmp_path):
    folder = export(smoke_run[0], tmp_path / "int8", format="onnx", quantize="int8")
    assert json.loads((folder / "model.json").read_text())["graphs"]["quantized"] == "int8"
    size = (folder / "step.onnx").stat().st_size
    assert size < 0.6 * (onnx_folder / "step.onnx").stat().st_size
    answers = runtime.OnnxAnswerer(folder, "greedy").answer(QUESTIONS)
    assert len(answers) == len(QUESTIONS) and all(a.score <= 0 for a in answers)


@pytest.mark.parametrize("args, message", [
    (["--decode", "sample"], "the ONNX runtime searches greedy or beam"),
    (["--attention", "--format", "jsonl"], "--attention reads the torch model's attention"),
    (["--device", "cuda"], "an ONNX export runs on the CPU"),
    (["--decode", "beam", "beam_size=0"], "decode.beam_size must be >= 1"),
    (["--decode", "greedy", "temperature=0.5"], "temperature: not an option of decode=greedy"),
])
@pytest.mark.cli
def test_the_cli_refuses_what_the_runtime_cannot_do(onnx_folder, args, message):
    result = subprocess.run([sys.executable, "-m", "qa_seq2seq.decode", "--model",
                             str(onnx_folder), *args], input="What is 3 plus 4?\n",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.cli
def test_torch_commands_name_the_onnx_folder_for_what_it_is(onnx_folder):
    result = subprocess.run([sys.executable, "-m", "qa_seq2seq.evaluate",
                             f"ckpt_path={onnx_folder}"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "is an ONNX export" in result.stdout + result.stderr


def test_a_folder_that_is_not_an_export_is_refused(tmp_path):
    (tmp_path / "step.onnx").write_bytes(b"not a graph")
    (tmp_path / "model.json").write_text(json.dumps({"format": "qa_seq2seq-weights"}))
    with pytest.raises(runtime.CheckpointError, match="not an ONNX export"):
        runtime.OnnxAnswerer(tmp_path)
    (tmp_path / "model.json").write_text("{")
    with pytest.raises(runtime.CheckpointError, match="cannot read the export's description"):
        runtime.OnnxAnswerer(Path(tmp_path))


def test_quantizing_needs_the_onnx_format(smoke_run, tmp_path):
    with pytest.raises(runtime.ConfigError, match="quantizes ONNX graphs: add --format onnx"):
        export(smoke_run[0], tmp_path / "weights", quantize="int8")
    assert not (tmp_path / "weights").exists()  # refused before anything was written


@pytest.mark.parametrize("graphs,message", [
    ({"encoders": {"any": "../elsewhere.onnx"}}, "names the graph '../elsewhere.onnx'"),
    ({"encoders": {"any": "/etc/passwd"}}, "names the graph '/etc/passwd'"),
    ({"encoders": {"any": "encoder.onnx"}}, "does not describe the graphs this version reads"),
    ("not a map", "does not describe the graphs"),
])
def test_an_export_description_reaches_only_graphs_in_its_own_folder(onnx_folder, tmp_path,
                                                                     graphs, message):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(onnx_folder, folder)
    description = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**description, "graphs": graphs}))
    with pytest.raises(runtime.CheckpointError, match=re.escape(message)):
        runtime.OnnxAnswerer(folder)


@pytest.mark.parametrize("name", ["passage_qa", "number_values"])
@pytest.mark.cli
def test_onnxruntime_runs_the_graphs_without_a_warning(exported, name):
    """onnxruntime checks each output's shape against the graph's and writes a warning to stderr
    at every call when they differ (a 2-D scatter_reduce exports with a 1-D shape)."""
    _, folder = exported(name)
    script = ("import json, sys, numpy as np\n"
              "from qa_seq2seq.deployment import runtime\n"
              "folder = sys.argv[1]\n"
              "model = runtime.OnnxModel(__import__('pathlib').Path(folder), "
              "json.load(open(folder + '/graphs.json')))\n"
              "src = np.array([[4, 5, 10, 4, 6], [5, 10, 5, 0, 0]]); lengths = np.array([5, 3])\n"
              "runtime.beam_search(model, src, lengths, beam_size=2, max_length=3)\n")
    result = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "onnxruntime" not in result.stderr, result.stderr[:500]
