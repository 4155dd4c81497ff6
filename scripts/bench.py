"""Training and decoding speed, side by side with a plain-PyTorch reference, in one run.

    python scripts/bench.py                       # every row, ~16 s each on 2 CPU cores; then decoding
    python scripts/bench.py --datasets arith --rows reference,lstm --steps 20 --json bench.json

Datasets (``--datasets``): the shipped experiments a user starts from, on data with realistic
lengths: ``toy`` (``data=toy`` with the plain model, the reference's architecture: ~10-token
questions, 1-3-token answers), ``arith``
(``+experiment=arith``: the generated arithmetic QA, ~22-token questions, 2-17-token answers) and
``arith-char`` (the same with ``data.tokenizer.model_type=char``: ~29 / 2-20 characters),
``passages`` (``+experiment=passage_qa``: a question and its passage, ~140 tokens, answers of
1-6 tokens) and ``passages-256``, ``-512``, ``-1024`` (the same preset on sources of exactly that
many tokens: several generated passages joined, cut at ``data.max_question_length``).

Rows (each in its own process, so that peak memory is its own):

- ``reference``: nn.Embedding + packed nn.LSTM encoder, its final (h, c) into an nn.LSTM decoder,
  teacher forcing, Adam, on the same token ids, batched with the strongest hand-written policy:
  the whole epoch sorted by (question length, answer length), the batches shuffled. On the
  ``passages`` datasets, the preset's architecture written so (``ReferencePassageQA``: a
  bidirectional encoder, linear bridge, ``general`` attention and copy attention).
- ``lstm``, ``peephole_lstm``, ``layernorm_lstm``, ``gru``, ``rnn``, ``lstm+rdrop``: the
  dataset's experiment with ``model/net/cell=ROW``, trained through the real entry point
  (``qa_seq2seq.train.train(cfg)`` with the shipped configs: datamodule, logger and callbacks on,
  as a user runs it); a callback only reads the clock. ``+rdrop``: ``recurrent_dropout=0.25``;
  ``+compile``: ``model.compile=true`` (the first step, reported, includes the compilation);
  ``+dot``: ``model/net/attention=dot`` (the decoder RNN still one fused call); ``+feed``:
  ``model.net.input_feeding=true`` (the decoder runs step by step).

Reported per row: real (non-padding) src+tgt tokens/s over the timed steps (warm-up excluded)
and the ratio to the dataset's reference, the padding of the question (encoder) and answer
(decoder) positions, achieved GFLOP/s against float32 matmul GFLOP/s at the model's own GEMM
shapes, peak resident memory, and the first training step's seconds (with ``+compile``, the
compilation). Decoding rows come from bench_decode.py.
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

import lightning.pytorch as L

from qa_seq2seq.reporting import entry_point

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"toy": ["data=toy"], "arith": ["+experiment=arith"],
            "arith-char": ["+experiment=arith", "data.tokenizer.model_type=char"],
            "passages": ["+experiment=passage_qa", "scheduler.warmup_steps=5"]}  # 45 steps in all
LONG_SOURCES = (256, 512, 1024)  # passages-N: sources of N tokens
DATASETS |= {f"passages-{n}": [*DATASETS["passages"], "data.generate=null",
                               *(f"data.{split}_file=bench-results/passages-{n}/{split}.jsonl"
                                 for split in ("train", "validation", "test")),
                               f"data.max_question_length={n}"] for n in LONG_SOURCES}
ROWS = ["reference", "lstm", "peephole_lstm", "layernorm_lstm", "gru", "rnn", "lstm+rdrop",
        "peephole_lstm+compile", "layernorm_lstm+compile", "lstm+rdrop+compile", "lstm+dot",
        "lstm+dot+feed"]


def compose(args, overrides: list[str] = ()):
    from qa_seq2seq.configs import compose as compose_train

    if args.dataset.startswith("passages-"):
        write_long_passages(int(args.dataset.split("-")[1]))
    return compose_train([*DATASETS[args.dataset], *overrides])


def write_long_passages(tokens: int) -> None:
    """``bench-results/passages-<tokens>/``: each row's passage followed by enough other
    generated passages (about 140 tokens each) that its source passes ``tokens``; 4,000
    training rows, so that validation (at half an epoch) comes after the timed steps."""
    from qa_seq2seq.data.generated import write_jsonl
    from qa_seq2seq.data.passages import generate

    folder = ROOT / "bench-results" / f"passages-{tokens}"
    if (folder / "test.jsonl").exists():
        return
    per_row = tokens // 120 + 1
    rows = generate(0, {"train": 4100}, people={"train": 4000}, places={"train": 2000})["train"]
    others = list(dict.fromkeys(r["context"] for r in rows))
    for split, count in (("train", 4000), ("validation", 50), ("test", 50)):
        # The row's own passage first (its answer is never cut off), then others.
        joined = [{**row, "context": " ".join([row["context"], *(others[(i + k) % len(others)]
                                                                 for k in range(1, per_row))])}
                  for i, row in enumerate(rows[:count])]
        write_jsonl(folder / f"{split}.jsonl", joined)


def model_shape(cfg, vocab: int) -> dict:
    """The sizes the FLOP and peak figures need."""
    return {"vocab": vocab, **{k: cfg.model.net[k] for k in ("embedding_size", "hidden_size",
                                                          "num_layers")}}


def lstm_flops_per_step(batch: int, input_size: int, hidden: int, layers: int, gates: int) -> float:
    """Forward multiply-adds x 2 of the fused kernels for one time step."""
    total = 0.0
    for layer in range(layers):
        total += 2 * batch * gates * hidden * ((input_size if layer == 0 else hidden) + hidden)
    return total


def training_flops(src_positions, tgt_positions, shape: dict, gates: int) -> float:
    """Forward + backward (~3x forward) FLOPs of one step over the padded (B, S) and (B, T):
    ``positions`` = B x steps."""
    E, H, L, V = shape["embedding_size"], shape["hidden_size"], shape["num_layers"], shape["vocab"]
    forward = (src_positions + tgt_positions) * lstm_flops_per_step(1, E, H, L, gates)
    forward += tgt_positions * 2 * H * V  # output layer
    return 3 * forward


def matmul_peak(shape: dict, batch_size: int, precision: str = "32-true") -> float:
    """GFLOP/s of torch.mm at the model's recurrent GEMM shape (B, E+H) x (E+H, 4H), on the
    device and in the dtype the row trains in (float32, or bfloat16/float16 when mixed)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision, torch.float32)
    B, K, N = batch_size, shape["embedding_size"] + shape["hidden_size"], 4 * shape["hidden_size"]
    a = torch.randn(B * 16, K, device=device, dtype=dtype)  # 16 steps of input projection
    b = torch.randn(K, N, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(20):
        start = clock()
        a @ b
        times.append(clock() - start)
    return 2 * a.shape[0] * K * N / statistics.median(times) / 1e9


class StepTimer(L.Callback):
    """Reads the clock at each training batch's end (so a step's time includes fetching and
    collating its batch, as a user's run does) and counts the batch's positions."""

    last: StepTimer | None = None  # the instance Hydra made, for the row to read

    def __init__(self, warmup: int):
        self.warmup, self.times, self.counts, self.started = warmup, [], [], None
        self.first_step_s = 0.0
        StepTimer.last = self

    def on_train_start(self, trainer, pl_module):
        self.started = clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = clock()
        if trainer.global_step == 1:
            self.first_step_s = now - self.started
        elif trainer.global_step > self.warmup:
            self.times.append(now - self.started)
            self.counts.append(positions(batch.src, batch.src_lengths, batch.tgt_out > 0))
        self.started = now


def clock() -> float:
    """Seconds, after the GPU (if any) has finished what was queued."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def positions(src, src_lengths, tgt_mask) -> tuple[int, int, int, int]:
    """(padded question, real question, padded answer, real answer) positions of one batch."""
    return src.numel(), int(src_lengths.sum()), tgt_mask.numel(), int(tgt_mask.sum())


# ----- one row, in its own process ------------------------------------------------------------
def run_reference(args, tmp: str) -> dict:
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate
    from reference_model import ReferencePassageQA, ReferenceSeq2Seq
    from torch import nn

    from qa_seq2seq.data.batching import pad

    cfg = compose(args)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.fit_tokenizer()
    ds = dm.split("train")
    src_ids, tgt_ids = list(ds["src_ids"]), list(ds["tgt_ids"])
    shape = model_shape(cfg, dm.tokenizer.vocab_size)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # where Lightning's "auto" trains
    half = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(args.precision)
    torch.manual_seed(0)
    model = (ReferencePassageQA(shape["vocab"], shape["embedding_size"], shape["hidden_size"])
             if args.dataset.startswith("passages") else
             ReferenceSeq2Seq(shape["vocab"], shape["embedding_size"], shape["hidden_size"],
                              shape["num_layers"])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device, enabled=half is torch.float16)
    # The whole epoch sorted by (question, answer) length, the batches shuffled.
    order = sorted(range(len(src_ids)), key=lambda i: (len(src_ids[i]), len(tgt_ids[i])))
    batch_size = cfg.data.batch_size
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    random.Random(0).shuffle(batches)
    times, counts = [], []
    started = clock()
    for step, rows in enumerate(batches[: args.warmup + args.steps + 1]):
        src, lengths = pad([src_ids[i] for i in rows], 0)
        tgt_in, _ = pad([[2, *tgt_ids[i]] for i in rows], 0)
        tgt_out, _ = pad([[*tgt_ids[i], 3] for i in rows], 0)
        with torch.autocast(device, dtype=half, enabled=half is not None):
            logits = model(src.to(device), lengths, tgt_in.to(device))
            loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt_out.to(device).flatten(),
                                   ignore_index=0)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        now = clock()
        if step > args.warmup:
            times.append(now - started)
            counts.append(positions(src, lengths, tgt_out > 0))
        started = now
    return summarize(times, counts, shape, batch_size, 4, args.precision)


def run_framework(args, tmp: str) -> dict:
    from qa_seq2seq.train import train

    cell, *extras = args.row.split("+")
    overrides = [f"model/net/cell={cell}", f"output_dir={tmp}", f"model.compile={'compile' in extras}",
                 f"trainer.max_steps={args.warmup + args.steps + 1}",
                 "trainer.enable_progress_bar=false", f"trainer.precision={args.precision}",
                 "+callbacks.bench_timer._target_=__main__.StepTimer",
                 f"+callbacks.bench_timer.warmup={args.warmup}"]
    if "rdrop" in extras:
        overrides.append("model.net.cell.recurrent_dropout=0.25")
    if "dot" in extras:
        overrides.append("model/net/attention=dot")
    if "feed" in extras:
        overrides.append("model.net.input_feeding=true")
    cfg = compose(args, overrides + args.overrides.split())
    train(cfg)
    from qa_seq2seq.data.tokenizer import Tokenizer

    shape = model_shape(cfg, Tokenizer.load(Path(tmp) / "tokenizer.model").vocab_size)
    gates = {"gru": 3, "rnn": 1}.get(cell, 4)
    timer = StepTimer.last
    net = cfg.model.net
    return {**summarize(timer.times, timer.counts, shape, cfg.data.batch_size, gates,
                        args.precision), "first_step_s": timer.first_step_s,
            "attention": (net.get("attention") or {}).get("score"),
            "input_feeding": net.get("input_feeding", False)}


def summarize(times, counts, shape: dict, batch_size: int, gates: int, precision: str) -> dict:
    import torch

    total = sum(times)
    src_padded, src_real, tgt_padded, tgt_real = (sum(c[i] for c in counts) for i in range(4))
    flops = training_flops(src_padded, tgt_padded, shape, gates)
    # Throughput counts real (non-padding) question + answer tokens: padding is not work done.
    return {"step_s": total / len(times), "tokens_per_s": (src_real + tgt_real) / total,
            "encoder_padding": 1 - src_real / src_padded,
            "decoder_padding": 1 - tgt_real / tgt_padded,
            "gflops": flops / total / 1e9, "matmul_gflops": matmul_peak(shape, batch_size, precision),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available()
            else 0.0}


def _measured(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def run_row(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        result = (run_reference if args.row == "reference" else run_framework)(args, tmp)
    print("RESULT " + json.dumps(result))


# ----- the table ------------------------------------------------------------------------------
@entry_point
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--datasets", default="toy,arith",
                        help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per row, interleaved (median taken); 3 for figures to quote")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precision", default="auto",
                        choices=["auto", "32-true", "bf16-mixed", "16-mixed"],
                        help="trainer.precision (default auto: what a user's run picks here); "
                             "the reference autocasts the same way")
    parser.add_argument("--overrides", default="", metavar="'KEY=VALUE ...'",
                        help="extra training overrides for the qa_seq2seq rows, e.g. data.sort_window=1000")
    parser.add_argument("--no-decode", action="store_true", help="skip bench_decode.py")
    parser.add_argument("--checkpoint", help="model for the decoding rows (default: newest run)")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        return run_row(args)
    if unknown := set(args.datasets.split(",")) - set(DATASETS):
        parser.error(f"--datasets: unknown {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(DATASETS)}")
    if unknown := set(args.rows.split(",")) - set(ROWS):
        parser.error(f"--rows: unknown {', '.join(sorted(unknown))}; choose from {', '.join(ROWS)}")

    if args.precision == "auto":  # resolved once, so that the reference runs the same way
        from qa_seq2seq.train import auto_precision

        args.precision = auto_precision("auto")
    runs: dict[str, list[dict]] = {}
    failed: list[str] = []
    for repeat in range(args.repeats):  # rows interleaved: each sees the machine's same moods
        for dataset in args.datasets.split(","):
            for row in args.rows.split(","):
                cmd = [sys.executable, __file__, "--row", row, "--dataset", dataset, "--steps",
                       str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                       "--precision", args.precision, "--overrides", args.overrides]
                out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
                line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:  # report it, and time the other rows
                    failed.append(f"{dataset}/{row}")
                    print(f"{dataset} row {row} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                    continue
                runs.setdefault(f"{dataset}/{row}", []).append(json.loads(line[len("RESULT "):]))
                print(f"  {dataset}/{row} (run {repeat + 1}): "
                      f"{runs[f'{dataset}/{row}'][-1]['tokens_per_s']:,.0f} tokens/s", file=sys.stderr)
    results = {name: {k: statistics.median(r[k] for r in rs) if _measured(rs[0][k]) else rs[0][k]
                      for k in rs[0]} for name, rs in runs.items()}  # medians of the measures
    import torch

    print(f"\nTraining through python -m qa_seq2seq.train's train(cfg), {args.steps} steps after "
          f"{args.warmup} of warm-up, {args.threads} threads, precision {args.precision}, "
          f"{'GPU ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}"
          + (f", overrides: {args.overrides}" if args.overrides else ""))
    header = (f"{'dataset/row':<26}{'tokens/s':>10}{'vs ref':>8}{'enc pad':>9}{'dec pad':>9}"
              f"{'GFLOP/s':>9}{'of peak':>9}{'peak RSS':>10}{'1st step':>10}")
    print(header + "\n" + "-" * len(header))
    for name, r in results.items():
        ref = results.get(f"{name.split('/')[0]}/reference", {}).get("tokens_per_s")
        ratio = f"{r['tokens_per_s'] / ref:.2f}x" if ref else "-"
        print(f"{name:<26}{r['tokens_per_s']:>10,.0f}{ratio:>8}{r['encoder_padding']:>8.1%}"
              f"{r['decoder_padding']:>8.1%}{r['gflops']:>9.1f}"
              f"{r['gflops'] / r['matmul_gflops']:>9.0%}{r['peak_rss_mb']:>8.0f}MB"
              + (f"{r['first_step_s']:>9.1f}s" if "first_step_s" in r else f"{'-':>10}")
              + (f"{r['peak_gpu_mb']:>8.0f}MB on the GPU" if r["peak_gpu_mb"] else ""))
    if results:
        print(f"(matmul peak at the recurrent GEMM shape: "
              f"{statistics.median(r['matmul_gflops'] for r in results.values()):.1f} GFLOP/s; "
              f"FLOPs count the RNNs and the output layer, not attention)")
    for name, r in results.items():  # attention's cost: against the same dataset's plain lstm
        plain = results.get(f"{name.split('/')[0]}/lstm", {}).get("tokens_per_s")
        if plain and "+dot" in name:
            print(f"{name}: {r['tokens_per_s'] / plain:.2f}x the tokens/s of the plain lstm row")
    if not args.no_decode:
        import bench_decode

        results["decode"] = bench_decode.run(args.checkpoint, batch_sizes=(1, 64))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if failed:
        sys.exit(f"rows that failed (their errors are above): {', '.join(failed)}")


if __name__ == "__main__":
    main()
