"""Training and decoding speed, side by side with a plain-PyTorch reference, in one run.

    python scripts/bench.py                       # the table, ~3-5 minutes on 2 CPU cores
    python scripts/bench.py --rows lstm,gru --steps 10 --json bench.json

Rows (each in its own process, so that peak memory is its own):

- ``reference``: nn.Embedding + packed nn.LSTM encoder, its final (h, c) into an nn.LSTM decoder,
  teacher forcing, Adam, length-sorted batches: what a user writes by hand.
- ``lstm``, ``peephole_lstm``, ``layernorm_lstm``, ``gru``, ``rnn``, ``lstm+rdrop``: one qa_seq2seq
  training step through the real path (QADataModule -> LightningModule -> Trainer.fit), validation,
  checkpointing and logging off so that only the training loop is timed.

Reported per row: real (non-padding) src+tgt tokens/s and the ratio to the reference (medians
over timed steps, warm-up excluded), the share of padding, achieved GFLOP/s against float32
matmul GFLOP/s at the model's own GEMM shapes, and peak resident memory.
Decoding rows come from bench_decode.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qa_seq2seq.errors import entry_point

ROOT = Path(__file__).resolve().parents[1]
ROWS = ["reference", "lstm", "peephole_lstm", "layernorm_lstm", "gru", "rnn", "lstm+rdrop"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def make_data(folder: Path, n: int, question_len: int, answer_len: int, seed: int = 0) -> None:
    """Random character strings around the requested lengths (a char vocabulary of ~30)."""
    rng = random.Random(seed)

    def text(mean: int) -> str:
        return "".join(rng.choice(LETTERS + "  ") for _ in range(rng.randint(mean * 3 // 4,
                                                                             mean * 5 // 4)))

    for split, size in (("train", n), ("validation", 64)):
        with (folder / f"{split}.jsonl").open("w") as f:
            for _ in range(size):
                f.write(json.dumps({"question": text(question_len), "answer": text(answer_len)})
                        + "\n")


def datamodule(args, folder: Path):
    from qa_seq2seq.data import QADataModule
    from qa_seq2seq.tokenizer import Tokenizer

    dm = QADataModule(str(folder / "train.jsonl"), str(folder / "validation.jsonl"),
                      batch_size=args.batch_size, sort_window=100, seed=0,
                      max_question_length=4 * args.question_len,
                      tokenizer=lambda texts: Tokenizer.train(texts, model_type="char"))
    dm.fit_tokenizer()
    return dm


def lstm_flops_per_step(batch: int, input_size: int, hidden: int, layers: int, gates: int) -> float:
    """Forward multiply-adds x 2 of the fused kernels for one time step."""
    total = 0.0
    for layer in range(layers):
        total += 2 * batch * gates * hidden * ((input_size if layer == 0 else hidden) + hidden)
    return total


def training_flops(batch, src_steps, tgt_steps, args, gates: int) -> float:
    """Forward + backward (~3x forward) FLOPs of one training step."""
    E, H, L, V = args.embedding_size, args.hidden_size, args.num_layers, args.vocab
    forward = (src_steps + tgt_steps) * lstm_flops_per_step(batch, E, H, L, gates)
    forward += tgt_steps * 2 * batch * H * V  # output layer
    return 3 * forward


def matmul_peak(args) -> float:
    """float32 GFLOP/s of torch.mm at the model's recurrent GEMM shape (B, E+H) x (E+H, 4H)."""
    import torch

    B, K, N = args.batch_size, args.embedding_size + args.hidden_size, 4 * args.hidden_size
    a, b = torch.randn(B * 16, K), torch.randn(K, N)  # 16 steps of input projection at once
    for _ in range(3):
        a @ b
    times = []
    for _ in range(20):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * a.shape[0] * K * N / statistics.median(times) / 1e9


# ----- one row, in its own process ------------------------------------------------------------
def run_reference(args, dm) -> dict:
    import torch
    import torch.nn.functional as F
    from reference_model import ReferenceSeq2Seq
    from torch import nn

    from qa_seq2seq.batching import pad

    torch.manual_seed(0)
    V, E, H, L = dm.tokenizer.vocab_size, args.embedding_size, args.hidden_size, args.num_layers

    model = ReferenceSeq2Seq(V, E, H, L)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ds = dm.split("train")
    src_ids, tgt_ids = list(ds["src_ids"]), list(ds["tgt_ids"])
    # Length-sorted batches, shuffled: the hand-written loop's batching.
    order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
    batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    random.Random(0).shuffle(batches)
    times, tokens = [], []
    for step, rows in enumerate(batches[: args.warmup + args.steps]):
        start = time.perf_counter()
        src, lengths = pad([src_ids[i] for i in rows], 0)
        tgt_in, _ = pad([[2, *tgt_ids[i]] for i in rows], 0)
        tgt_out, _ = pad([[*tgt_ids[i], 3] for i in rows], 0)
        logits = model(src, lengths, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
            tokens.append((src.numel(), tgt_in.numel(),
                           int(lengths.sum()) + sum(len(tgt_ids[i]) + 1 for i in rows)))
    return summarize(args, times, tokens, gates=4)


def run_framework(args, dm, cell: str) -> dict:
    import lightning.pytorch as L
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from qa_seq2seq.module import Seq2SeqModule

    base, _, extra = cell.partition("+")
    overrides = [f"model/cell={base}", f"model.embedding_size={args.embedding_size}",
                 f"model.hidden_size={args.hidden_size}", f"model.num_layers={args.num_layers}",
                 "model.dropout=0.0", "output_dir=."]
    if extra == "rdrop":
        overrides.append("model.cell.recurrent_dropout=0.25")
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(0)
    net = instantiate(cfg.model, vocab_size=dm.tokenizer.vocab_size, _convert_="all")
    module = Seq2SeqModule(net, dm.tokenizer, optimizer=instantiate(cfg.optimizer),
                           search=instantiate(cfg.decode))

    class StepTimer(L.Callback):
        def __init__(self):
            self.times, self.tokens, self.last = [], [], None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            now = time.perf_counter()
            if self.last is not None and batch_idx > args.warmup:
                self.times.append(now - self.last)  # includes fetching and collating the batch
                self.tokens.append((batch.src.numel(), batch.tgt_in.numel(),
                                    int(batch.src_lengths.sum()) + int((batch.tgt_out > 0).sum())))
            self.last = now

    timer = StepTimer()
    trainer = L.Trainer(accelerator="cpu", max_steps=args.warmup + args.steps + 1,
                        limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        gradient_clip_val=1.0, callbacks=[timer])
    trainer.fit(module, datamodule=dm)
    return summarize(args, timer.times, timer.tokens, gates=len(net.encoder.rnn.gates))


def summarize(args, times, tokens, gates: int) -> dict:
    step = statistics.median(times)
    src_padded, tgt_padded, real = (statistics.median(t[i] for t in tokens) for i in range(3))
    batch = args.batch_size
    flops = training_flops(batch, src_padded / batch, tgt_padded / batch, args, gates)
    # Throughput counts real (non-padding) question + answer tokens: padding is not work done.
    return {"step_s": step, "tokens_per_s": real / step,
            "padded_tokens_per_s": (src_padded + tgt_padded) / step,
            "padding": 1 - real / (src_padded + tgt_padded),
            "gflops": flops / step / 1e9,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_row(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        make_data(Path(tmp), args.examples, args.question_len, args.answer_len)
        dm = datamodule(args, Path(tmp))
        args.vocab = dm.tokenizer.vocab_size
        result = run_reference(args, dm) if args.row == "reference" else run_framework(args, dm,
                                                                                        args.row)
    result["matmul_gflops"] = matmul_peak(args)
    print("RESULT " + json.dumps(result))


# ----- the table ------------------------------------------------------------------------------
@entry_point
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="runs per row (median taken)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--embedding-size", type=int, default=64)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--question-len", type=int, default=40)
    parser.add_argument("--answer-len", type=int, default=10)
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-decode", action="store_true", help="skip bench_decode.py")
    parser.add_argument("--checkpoint", help="model for the decoding rows (default: newest run)")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        return run_row(args)

    results = {}
    for row in args.rows.split(","):
        runs = []
        for _ in range(args.repeats):
            shape = ("steps", "warmup", "batch_size", "embedding_size", "hidden_size",
                     "num_layers", "question_len", "answer_len", "examples", "threads")
            cmd = [sys.executable, __file__, "--row", row] + [
                x for key in shape for x in (f"--{key.replace('_', '-')}", str(getattr(args, key)))]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"row {row} failed:\n{out.stderr[-3000:]}")
            runs.append(json.loads(line[len("RESULT "):]))
        results[row] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"  {row}: {results[row]['tokens_per_s']:,.0f} tokens/s", file=sys.stderr)
    ref = results.get("reference", {}).get("tokens_per_s")
    print(f"\nTraining, {args.num_layers}x{args.hidden_size} encoder-decoder, embeddings "
          f"{args.embedding_size}, batch {args.batch_size}, questions ~{args.question_len} / "
          f"answers ~{args.answer_len} tokens, {args.threads} threads")
    header = (f"{'row':<16}{'tokens/s':>10}{'vs ref':>8}{'padding':>9}{'GFLOP/s':>9}"
              f"{'of peak':>9}{'peak RSS':>10}")
    print(header + "\n" + "-" * len(header))
    for row, r in results.items():
        ratio = f"{r['tokens_per_s'] / ref:.2f}x" if ref else "-"
        print(f"{row:<16}{r['tokens_per_s']:>10,.0f}{ratio:>8}{r['padding']:>8.1%}"
              f"{r['gflops']:>9.1f}{r['gflops'] / r['matmul_gflops']:>9.0%}"
              f"{r['peak_rss_mb']:>8.0f}MB")
    print(f"(matmul peak at the recurrent GEMM shape: "
          f"{statistics.median(r['matmul_gflops'] for r in results.values()):.1f} GFLOP/s)")
    if not args.no_decode:
        import bench_decode

        results["decode"] = bench_decode.run(args.checkpoint, batch_sizes=(1, args.batch_size))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
