"""Shared fixtures: tiny models and a tiny tokenizer, built in milliseconds."""

import os

# Before torch starts its thread pool, here and in every subprocess a test starts: the models are
# tiny, so threads only add overhead, and `make test` runs a test per core (pytest-xdist).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from contextlib import contextmanager  # noqa: E402
from functools import partial  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from qa_seq2seq.network.builder import build_network  # noqa: E402
from qa_seq2seq.network.model import Seq2Seq  # noqa: E402
from qa_seq2seq.network.rnn import GRU, LSTM, RNN, LayerNormLSTM, PeepholeLSTM  # noqa: E402

pytest_plugins = ["tests.markers"]

CELLS = {"lstm": LSTM, "peephole_lstm": PeepholeLSTM, "layernorm_lstm": LayerNormLSTM,
         "gru": GRU, "rnn": RNN}


def tiny_model(cell="lstm", vocab_size=11, seed=0, **kwargs) -> Seq2Seq:
    torch.manual_seed(seed)
    options = {"embedding_size": 8, "hidden_size": 12, "num_layers": 2, **kwargs}
    return build_network(vocab_size, partial(CELLS[cell]), **options)


PIECES = ["<pad>", "<unk>", "<s>", "</s>", "▁a", "▁b", "▁c", "x0", "x1", "x2", "<sep>"]


def follow_spans(model: Seq2Seq) -> None:
    """Give a tiny model's ``copy_span`` the word pieces of ``PIECES`` (ids 4-6 start a word,
    7-9 continue one) and biases that move its attention, so tests see it at work."""
    if (span := model.decoder.span) is not None:
        vocab = len(span.continues)
        span.set_pieces([*PIECES, *(f"y{i}" for i in range(vocab - len(PIECES)))][:vocab])
        with torch.no_grad():
            span.follow.copy_(torch.tensor([2.0, 1.0]))


@pytest.fixture
def model():
    return tiny_model().eval()


def random_batch(batch=5, vocab_size=11, max_len=7, seed=0):
    """Right-padded source ids (B, S) with lengths (B,), ids >= 4 (no specials)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (batch,), generator=g)
    lengths[0] = max_len
    src = torch.randint(4, vocab_size, (batch, max_len), generator=g)
    src[torch.arange(max_len)[None, :] >= lengths[:, None]] = 0
    return src, lengths


def compose_train(overrides, output_dir):
    """conf/train.yaml with ``overrides``, as ``python -m qa_seq2seq.train`` composes it."""
    from qa_seq2seq.configs import compose

    return compose([f"output_dir={output_dir}", *overrides])


def compose_evaluate(ckpt_path, *overrides):
    """conf/evaluate.yaml for ``ckpt_path``, as ``python -m qa_seq2seq.evaluate`` composes it."""
    from qa_seq2seq.configs import compose

    return compose([f"ckpt_path={ckpt_path}", *overrides], config_name="evaluate")


def toy_data_overrides(data_dir) -> list[str]:
    """Point data=toy at a private folder (generated there on first use)."""
    return [f"data.{split}_file={data_dir}/{split}.jsonl"
            for split in ("train", "validation", "test")] + [f"data.generate.out_dir={data_dir}"]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Train the smoke experiment once; returns (run directory, metrics)."""
    from omegaconf import OmegaConf

    from qa_seq2seq.train import train

    root = tmp_path_factory.mktemp("smoke")
    cfg = compose_train(["+experiment=smoke", *toy_data_overrides(root / "data")], root / "run")
    (root / "run" / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, root / "run" / ".hydra" / "config.yaml")  # as Hydra does for a run
    return root / "run", train(cfg)


@contextmanager
def serving(service):
    """Run ``service`` (qa_seq2seq.serve) on uvicorn in a thread, on a free port; yields its URL."""
    import threading
    import time

    from qa_seq2seq.serve import listen, server

    sock = listen("127.0.0.1", 0)
    server = server(service, access_log=False, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
