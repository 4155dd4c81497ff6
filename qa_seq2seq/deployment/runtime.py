"""Answer questions with an exported ONNX model: numpy and onnxruntime only, no torch.

    python -m qa_seq2seq.export --checkpoint outputs/toy_lstm/<run> --out exported/toy --format onnx
    qa-seq2seq-decode --model exported/toy

    from qa_seq2seq.deployment.runtime import OnnxAnswerer
    qa = OnnxAnswerer("exported/toy", decode="beam", beam_size=5)
    print(qa.answer(["What is 3 plus 4?"])[0].text)

The folder's ``encoder*.onnx`` and ``step.onnx`` (``qa_seq2seq.deployment.onnx_graphs``) are the network's
``encode`` and ``step``; greedy and beam search are the torch model's own loops
(``qa_seq2seq.decoding.search_loop``) on numpy arrays: the same options, stop rule, ranking and
tie-breaks, the same scores up to float rounding. Sampling stays with the torch model.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa_seq2seq.data.tokenizer import PAD_ID, Tokenizer
from qa_seq2seq.decoding import search_loop
from qa_seq2seq.decoding.answerer_base import AnswererBase
from qa_seq2seq.decoding.arrays import NUMPY
from qa_seq2seq.decoding.hypotheses import Hypothesis
from qa_seq2seq.decoding.search_options import searches_in
from qa_seq2seq.errors import CheckpointError, ConfigError

ONNX_FORMAT = "qa_seq2seq-onnx"
State = dict[str, np.ndarray]


def is_onnx_export(path: str | Path | None) -> bool:
    """Whether ``path`` is a folder written by ``export --format onnx``."""
    return path is not None and (Path(path) / "step.onnx").is_file()


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("decoding an ONNX export needs onnxruntime: pip install -e \".[export]\" "
                          "(or pip install onnxruntime)") from None
    return onnxruntime


class OnnxModel:
    """``encode`` / ``step`` / ``reorder_state`` of an exported network, on numpy arrays."""

    def __init__(self, folder: Path, graphs: dict[str, Any], threads: int = 0):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (the cores)
        # Idle threads spinning between the many small step calls cost more than they save.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def session(file: Any):
            if not (isinstance(file, str) and file == Path(file).name and file.endswith(".onnx")):
                raise CheckpointError(f"{folder}/model.json names the graph {file!r}: an export's "
                                      "graphs are .onnx files inside its own folder")
            return ort.InferenceSession(str(folder / file), options,
                                        providers=["CPUExecutionProvider"])

        # "any": one encoder for every source length; else one per length bucket.
        self.encoders = {None if k == "any" else int(k): session(f)
                         for k, f in graphs["encoders"].items()}
        self.step_session = session(graphs["step"])
        self.names, self.carried = graphs["state"], graphs["carried"]
        self.batch_axes = graphs["batch_axes"]
        # Older exports traced attention with one memory row per state row.
        self.grouped_memory = graphs.get("grouped_memory", False)

    def encode(self, src: np.ndarray, src_lengths: np.ndarray) -> State:
        """src (B, S) int64, src_lengths (B,) -> the decoder's state before ``<bos>``."""
        if None in self.encoders:
            encoder = self.encoders[None]
        else:  # a loop-cell encoder: pad to the smallest bucket that holds the batch
            fits = [size for size in self.encoders if size >= src.shape[1]]
            if not fits:
                raise ConfigError(f"a question of {src.shape[1]} tokens is longer than the "
                                  f"longest this export takes ({max(self.encoders)})")
            bucket = min(fits)
            src = np.pad(src, ((0, 0), (0, bucket - src.shape[1])), constant_values=PAD_ID)
            encoder = self.encoders[bucket]
        outputs = encoder.run(self.names, {"src": src, "src_lengths": src_lengths})
        return dict(zip(self.names, outputs))

    def step(self, tokens: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """tokens (B,) -> logits (B, V) and the next state."""
        out = self.step_session.run(None, {"tokens": tokens, **state})
        return out[0], {**state, **dict(zip(self.carried, out[1:]))}

    def reorder_state(self, state: State, order: np.ndarray) -> State:
        """Select/repeat batch rows: ``order`` (B',) indexes each tensor's batch axis. The
        attention memory of an export with ``grouped_memory`` keeps one row per question, as
        ``qa_seq2seq.network.model.reorder_memory`` keeps it."""
        grouped = {name for name in state if self.grouped_memory and name.startswith("memory")}
        reordered = {name: np.take(x, order, axis=self.batch_axes[name])
                     for name, x in state.items() if name not in grouped}
        if grouped:
            rows = state["h"].shape[self.batch_axes["h"]]
            memory_rows = state["memory_mask"].shape[0]
            questions = order // (rows // memory_rows)  # the question of each new row
            starts = np.flatnonzero(np.r_[True, questions[1:] != questions[:-1]])
            runs, lengths = questions[starts], np.diff(np.r_[starts, questions.size])
            if not (lengths == lengths[0]).all():
                runs = questions  # one memory row per state row
            same = runs.size == memory_rows and (runs == np.arange(memory_rows)).all()
            reordered.update({name: state[name] if same else np.take(state[name], runs, axis=0)
                              for name in grouped})
        return reordered


def greedy_search(model: OnnxModel, src: np.ndarray, src_lengths: np.ndarray,
                  max_length: int = 64, max_length_ratio: float | None = None,
                  min_length: int = 0) -> list[list[Hypothesis]]:
    """The most likely token at every step (``qa_seq2seq.decoding.search.greedy_search``)."""
    return search_loop.single_path(
        model, NUMPY, model.encode(src, src_lengths), src_lengths,
        lambda log_probs: search_loop.greedy(NUMPY, log_probs), max_length, max_length_ratio,
        min_length)


def beam_search(model: OnnxModel, src: np.ndarray, src_lengths: np.ndarray, beam_size: int = 5,
                n_best: int = 1, max_length: int = 64, max_length_ratio: float | None = None,
                min_length: int = 0, length_penalty: str = "none", alpha: float = 0.6,
                no_repeat_ngram_size: int = 0) -> list[list[Hypothesis]]:
    """Beam search (``qa_seq2seq.decoding.search.beam_search``: the same loop, on numpy)."""
    return search_loop.beam(model, NUMPY, model.encode(src, src_lengths), src_lengths, beam_size,
                            n_best, max_length, max_length_ratio, min_length, length_penalty,
                            alpha, no_repeat_ngram_size)


SEARCHES = searches_in(sys.modules[__name__])  # greedy and beam; sampling needs torch


def read_description(folder: str | Path) -> dict[str, Any]:
    """The ``model.json`` of an ONNX export folder, checked."""
    path = Path(folder) / "model.json"
    try:
        description = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read the export's description ({e}); export the "
                              "model again with python -m qa_seq2seq.export --format onnx") from None
    if description.get("format") != ONNX_FORMAT:
        raise CheckpointError(f"{path}: format {description.get('format')!r}, not an ONNX export "
                              f"({ONNX_FORMAT!r}); export with --format onnx")
    return description


class OnnxAnswerer(AnswererBase):
    """``Answerer`` for an ONNX export folder: the same questions, searches and answers.

    ``decode=None`` uses the search the model was validated with in training (greedy or beam);
    ``options`` override its options. ``threads``: onnxruntime's intra-op threads (0: default).
    """

    searches = SEARCHES

    def __init__(self, folder: str | Path, decode: str | None = None, *, batch_size: int = 64,
                 threads: int = 0, **options: Any):
        path = Path(folder)
        self.description = read_description(path)
        try:
            model = OnnxModel(path, self.description["graphs"], threads)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise CheckpointError(f"{path}/model.json does not describe the graphs this "
                                  f"version reads ({type(e).__name__}: {e}); export the model "
                                  "again") from None
        super().__init__(model, Tokenizer((path / "tokenizer.model").read_bytes()), path,
                         self.description.get("data"), self.description.get("decode"), decode,
                         batch_size, options)

    def set_search(self, decode: str | None, options: dict[str, Any]) -> None:
        if decode == "sample":
            raise ConfigError("decode=sample: the ONNX runtime searches greedy or beam; sample with "
                              "the torch model (the run, or a weights export)")
        super().set_search(decode, options)

    def pad(self, ids: list[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.array([len(q) for q in ids])
        src = np.full((len(ids), lengths.max()), PAD_ID, np.int64)
        for r, q in enumerate(ids):
            src[r, :lengths[r]] = q
        return src, lengths
