"""Decoding speed: greedy vs beam 5, batch 1 vs 64, a hand-written reference loop, CLI cold start.

    python scripts/bench_decode.py [--checkpoint RUN_DIR] [--repeats 3]
    python scripts/bench_decode.py --checkpoint outputs/arith/... --questions data/arith/test.jsonl
    python scripts/bench_decode.py --untrained --max-length 20      # every answer 20 tokens
    python scripts/bench_decode.py --untrained --device cuda --batch-sizes 1,64,1024
    python scripts/bench_decode.py --untrained --max-length 10 --profile 25   # where time goes

Uses the newest trained run under outputs/ (or --checkpoint) and the toy test questions (or the
``question`` field of the JSON Lines file --questions: use the data the model was trained on); without
a trained run (or with --untrained), an untrained 2x256 LSTM of the default shape, whose answers
all run to --max-length tokens, so that the step loop rather than the encoder dominates.
The reference is what a user writes by hand: the same weights in plain nn.Embedding/nn.LSTM/
nn.Linear, length-sorted batches of 64, one nn.LSTM step at a time, stopping when every answer
in the batch has ended.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from qa_seq2seq.decoding.checkpoint import CheckpointError, load_model
from qa_seq2seq.decoding.inference import answer
from qa_seq2seq.decoding.search import beam_search, greedy_search
from qa_seq2seq.reporting import entry_point

ROOT = Path(__file__).resolve().parents[1]


def read_questions(path: str | None) -> list[str]:
    """The ``question`` of each line of a JSON Lines file (default: the toy test split)."""
    import json

    from qa_seq2seq.data.toy import ensure_splits

    path = path or ensure_splits(ROOT / "data" / "toy") / "test.jsonl"
    return [json.loads(line)["question"] for line in Path(path).open()]


def untrained_checkpoint(questions: list[str], folder: Path) -> Path:
    """A qa_seq2seq checkpoint of an untrained 2x256 LSTM model, for when no run exists."""
    from qa_seq2seq.data.tokenizer import Tokenizer
    from qa_seq2seq.decoding.checkpoint import build_model, make_payload, weights_file

    tokenizer = Tokenizer.train(questions, vocab_size=256)
    config = {"_target_": "qa_seq2seq.network.builder.build_network", "vocab_size": tokenizer.vocab_size,
              "cell": {"_target_": "qa_seq2seq.network.rnn.LSTM", "_partial_": True},
              "embedding_size": 64, "hidden_size": 256, "num_layers": 2}
    torch.manual_seed(0)
    model = build_model(config, "bench")
    path = folder / "untrained.ckpt"
    torch.save(weights_file(model.state_dict(), make_payload(config, tokenizer)), path)
    return path


@torch.no_grad()
def reference_greedy(model, questions_ids, batch_size, max_length, device="cpu"):
    """The hand-written loop, on copies of the model's weights in plain torch modules."""
    enc_emb, dec_emb = model.encoder.embedding, model.decoder.embedding
    encoder, decoder = torch.nn.LSTM(1, 1), torch.nn.LSTM(1, 1)
    for plain, ours in ((encoder, model.encoder.rnn), (decoder, model.decoder.rnn)):
        plain.__init__(ours.input_size, ours.hidden_size, ours.num_layers, batch_first=True)
        plain.load_state_dict(ours.state_dict())
        plain.to(device)
    output = model.decoder.output
    order = sorted(range(len(questions_ids)), key=lambda i: len(questions_ids[i]))
    answers = {}
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        lengths = torch.tensor([len(questions_ids[i]) for i in rows])
        src = torch.full((len(rows), int(lengths.max())), PAD_ID)
        for j, i in enumerate(rows):
            src[j, : lengths[j]] = torch.tensor(questions_ids[i])
        packed = torch.nn.utils.rnn.pack_padded_sequence(enc_emb(src.to(device)), lengths,
                                                         batch_first=True, enforce_sorted=False)
        _, state = encoder(packed)
        token = torch.full((len(rows),), BOS_ID, device=device)
        done = torch.zeros(len(rows), dtype=torch.bool, device=device)
        out = []
        for _ in range(max_length):
            hidden, state = decoder(dec_emb(token)[:, None], state)
            token = output(hidden[:, 0]).argmax(-1)
            out.append(token)
            done |= token == EOS_ID
            if done.all():
                break
        for j, i in enumerate(rows):
            answers[i] = torch.stack(out, 1)[j].tolist()
    return answers


def timed(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_initialized():  # the answers are read back (tolist), but be sure
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_start(checkpoint: Path, repeats: int) -> tuple[float, float]:
    """Median seconds: `import torch`, and the CLI answering one question from nothing."""
    torch_cmd = [sys.executable, "-c", "import torch"]
    cli_cmd = [sys.executable, "-m", "qa_seq2seq.decode", "--checkpoint", str(checkpoint)]

    def run(cmd, stdin=b""):
        start = time.perf_counter()
        result = subprocess.run(cmd, input=stdin, capture_output=True, cwd=ROOT)
        if result.returncode:
            raise RuntimeError(result.stderr.decode()[-2000:])
        return time.perf_counter() - start

    pairs = [(run(torch_cmd), run(cli_cmd, b"What is 3 plus 4?\n")) for _ in range(repeats)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def run(checkpoint: str | None = None, repeats: int = 3, batch_sizes=(1, 64),
        max_length: int = 16, single_questions: int = 128, untrained: bool = False,
        questions_file: str | None = None, device: str = "cpu", profile_rows: int = 0) -> dict:
    questions = read_questions(questions_file)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = None
        if checkpoint is not None:  # a checkpoint asked for must load: no silent fallback
            loaded = load_model(checkpoint, device)
        elif not untrained:
            with contextlib.suppress(CheckpointError):  # no run trained yet
                loaded = load_model(None, device)
        if loaded is None:
            loaded = load_model(untrained_checkpoint(questions, Path(tmp)), device)
            label = f"untrained 2x256 LSTM: every answer runs to {max_length} tokens"
        else:
            label = str(loaded.checkpoint.path)
        return _run(loaded, label, questions, repeats, batch_sizes, max_length, single_questions,
                    device, profile_rows)


def _run(loaded, label, questions, repeats, batch_sizes, max_length, single_questions,
         device, profile_rows=0) -> dict:
    model, tokenizer = loaded.model, loaded.tokenizer
    ids = tokenizer.encode(questions)
    results = {"model": label, "questions": len(ids), "device": device,
               "answer_tokens": statistics.mean(len(h[0].tokens) + h[0].finished for h in answer(
                   model, ids, partial(greedy_search, max_length=max_length), 64, device))}
    searches = {"greedy": partial(greedy_search, max_length=max_length),
                "beam5": partial(beam_search, beam_size=5, max_length=max_length)}
    for name, search in searches.items():
        for batch in batch_sizes:
            subset = ids if batch > 1 else ids[:single_questions]  # batch 1 is slow: a sample
            seconds = timed(partial(answer, model, subset, search, batch, device), repeats)
            results[f"{name}_b{batch}"] = len(subset) / seconds
    big = 64 if 64 in batch_sizes else max(batch_sizes)  # the reference's and the ratios' batch
    seconds = timed(lambda: reference_greedy(model, ids, big, max_length, device), repeats)
    results[f"reference_greedy_b{big}"] = len(ids) / seconds
    ours = answer(model, ids, searches["greedy"], big, device)
    theirs = reference_greedy(model, ids, big, max_length, device)
    same = sum(h[0].tokens == _until_eos(theirs[i]) for i, h in enumerate(ours)) / len(ids)
    results["agreement_with_reference"] = same
    onnx_rows = []
    if device == "cpu":  # the CLI and onnxruntime answer on the CPU
        torch_s, cli_s = cold_start(loaded.checkpoint.path, repeats)
        results.update(import_torch_s=torch_s, cli_one_question_s=cli_s)
        onnx_rows = _onnx(loaded, ids, ours, repeats, big, max_length, results)

    print(f"\nDecoding {len(ids)} questions on {device} ({results['model']}; greedy answers "
          f"{results['answer_tokens']:.1f} tokens, <eos> included), questions/s")
    header = f"{'search':<10}" + "".join(f"{'batch ' + str(b):>12}" for b in batch_sizes)
    print(header + "\n" + "-" * len(header))
    for name in searches:
        print(f"{name:<10}" + "".join(f"{results[f'{name}_b{b}']:>12,.0f}" for b in batch_sizes))
    print(f"{'reference':<10}" + " " * 12 * batch_sizes.index(big)
          + f"{results[f'reference_greedy_b{big}']:>12,.0f}"
          f"   (hand-written greedy loop; same answers for {same:.1%}"
          + ("" if same > 0.5 else ": it is a plain LSTM encoder-decoder, and this model is not "
             "(attention, another cell or bridge...): compare the model with itself") + ")")
    print(f"greedy vs reference (batch {big}): "
          f"{results[f'greedy_b{big}'] / results[f'reference_greedy_b{big}']:.2f}x;  "
          f"beam 5 cost per question vs greedy (batch {big}): "
          f"{results[f'greedy_b{big}'] / results[f'beam5_b{big}']:.2f}x;  "
          f"greedy batch {big} vs batch {min(batch_sizes)}: "
          f"{results[f'greedy_b{big}'] / results[f'greedy_b{min(batch_sizes)}']:.1f}x")
    if device == "cpu":
        print(f"CLI cold start, one question: {cli_s:.2f}s vs `import torch` {torch_s:.2f}s "
              f"({cli_s / torch_s:.2f}x)")
    for row in onnx_rows:
        print(f"{row:<10}{'':>12}{results[f'{row}_greedy_b{big}']:>12,.0f} greedy "
              f"({results[f'{row}_greedy_b{big}'] / results[f'greedy_b{big}']:.2f}x torch), "
              f"{results[f'{row}_beam5_b{big}']:,.0f} beam 5 "
              f"({results[f'{row}_beam5_b{big}'] / results[f'beam5_b{big}']:.2f}x torch); "
              f"same greedy answers as torch for {results[f'{row}_agreement']:.1%}; "
              f"files {results[f'{row}_mb']:.1f} MB; CLI cold start {results[f'{row}_cli_s']:.2f}s")
    if profile_rows:
        passes = {name: partial(answer, model, ids, search, big, device)
                  for name, search in searches.items()}
        passes["reference"] = partial(reference_greedy, model, ids, big, max_length, device)
        _profile(passes, big, device, profile_rows)
    return results


def _profile(passes: dict, batch: int, device: str, rows: int) -> None:
    """torch.profiler's busiest operators in one pass of each search (after one unprofiled)."""
    from torch.profiler import profile

    sort_by = "self_cpu_time_total" if device == "cpu" else "self_device_time_total"
    for name, decode in passes.items():
        decode()
        with profile() as prof:
            decode()
        print(f"\n{name}, batch {batch}: the {rows} operators with the most {sort_by}")
        print(prof.key_averages().table(sort_by=sort_by, row_limit=rows))


def _onnx(loaded, ids, torch_greedy, repeats, batch, max_length, results) -> list[str]:
    """The ONNX export through the torch-free runtime (fp32 and int8), if the extra is installed."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print("(onnxruntime not installed: no ONNX rows; pip install -e '.[export]')")
        return []
    from qa_seq2seq.deployment.runtime import OnnxAnswerer
    from qa_seq2seq.export import export

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for row, quantize in (("onnx", None), ("onnx_int8", "int8")):
            folder = export(loaded.checkpoint.path, Path(tmp) / row, "onnx", quantize=quantize)
            for name, decode, options in (("greedy", "greedy", {}),
                                          ("beam5", "beam", {"beam_size": 5})):
                qa = OnnxAnswerer(folder, decode, batch_size=batch, max_length=max_length, **options)
                results[f"{row}_{name}_b{batch}"] = len(ids) / timed(partial(qa.answer_ids, ids),
                                                                     repeats)
            greedy = OnnxAnswerer(folder, "greedy", batch_size=batch, max_length=max_length)
            results[f"{row}_agreement"] = sum(a[0].tokens == b[0].tokens for a, b in zip(
                greedy.answer_ids(ids), torch_greedy)) / len(ids)
            results[f"{row}_mb"] = sum(p.stat().st_size for p in folder.glob("*.onnx")) / 1e6
            results[f"{row}_cli_s"] = cold_start(folder, repeats)[1]
            rows.append(row)
    return rows


def _until_eos(tokens: list[int]) -> list[int]:
    return tokens[: tokens.index(EOS_ID)] if EOS_ID in tokens else tokens


@entry_point
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="checkpoint file or run directory (default: newest)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=16)
    parser.add_argument("--untrained", action="store_true",
                        help="an untrained model: long answers, the decode loop dominates")
    parser.add_argument("--questions", metavar="JSONL",
                        help="questions to answer (their 'question' field; default: toy test)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: cpu)")
    parser.add_argument("--batch-sizes", default="1,64", metavar="B,B,...",
                        help="batch sizes to time (default: 1,64); the reference loop runs at 64, "
                             "or at the largest size given without 64")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS",
                        help="then profile one pass of greedy, beam 5 and the reference loop at "
                             "the reference's batch size (torch.profiler); print their ROWS busiest "
                             "operators (default: 0, no profile)")
    args = parser.parse_args()
    if args.questions and not Path(args.questions).is_file():
        parser.error(f"--questions {args.questions}: no such file")
    try:
        batch_sizes = sorted({int(b) for b in args.batch_sizes.split(",")})
    except ValueError:
        parser.error(f"--batch-sizes {args.batch_sizes}: give integers, e.g. 1,64")
    if batch_sizes[0] < 1:
        parser.error(f"--batch-sizes {args.batch_sizes}: sizes must be at least 1")
    if args.profile < 0:
        parser.error(f"--profile {args.profile}: give a number of rows, e.g. 25 (0: no profile)")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        parser.error(f"--device {args.device}: use cpu or cuda[:N]")
    if args.device != "cpu" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    run(args.checkpoint, args.repeats, tuple(batch_sizes), max_length=args.max_length,
        untrained=args.untrained, questions_file=args.questions, device=args.device,
        profile_rows=args.profile)


if __name__ == "__main__":
    main()
