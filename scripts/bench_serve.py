"""Serving under load: N concurrent HTTP clients on loopback beside a sequential batch-1 loop.

    python scripts/bench_serve.py [--checkpoint RUN_DIR] [--clients 1,64,200] [--requests 20]
    python scripts/bench_serve.py --checkpoint outputs/arith/... --questions data/arith/test.jsonl

Starts ``qa-seq2seq-serve`` on the model in a subprocess (access log off), then for each client
count runs that many clients at once, each sending ``--requests`` one-question requests, one after
another, over its own keep-alive connection. Prints requests/s, p50 and p99 latency and the
failed requests (an answer other than 200, or a connection reset or refused). The reference is
the sequential batch-1 loop a naive server runs: the same model answering one question at a time
in this process (``Answerer.answer([question])``), without HTTP.

Uses the newest trained run under outputs/ (or --checkpoint) and the toy test questions (or the
``question`` field of the JSON Lines file --questions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench_decode import read_questions  # noqa: E402

from qa_seq2seq.errors import ConfigError  # noqa: E402
from qa_seq2seq.reporting import entry_point  # noqa: E402


async def client(host: str, port: int, bodies: list[bytes], latencies: list[float]) -> int:
    """Send each body in turn on one keep-alive connection; returns how many failed."""
    failed, reader, writer = 0, None, None
    for body in bodies:
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"POST /answer HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json"
                         b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length[1]) if length else 0)
            ok = head.startswith(b"HTTP/1.1 200")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            ok, writer = False, None  # reset or refused: a new connection for the next
        latencies.append(time.perf_counter() - start)
        failed += not ok
    if writer is not None:
        writer.close()
    return failed


async def load(host: str, port: int, clients: int, requests: int,
               questions: list[str]) -> dict[str, float]:
    latencies: list[float] = []
    bodies = [[json.dumps({"questions": [questions[(c * requests + r) % len(questions)]]}).encode()
               for r in range(requests)] for c in range(clients)]
    start = time.perf_counter()
    failed = sum(await asyncio.gather(*(client(host, port, b, latencies) for b in bodies)))
    seconds = time.perf_counter() - start
    total = clients * requests
    return {"clients": clients, "requests": total, "ok": total - failed, "failed": failed,
            "requests_per_s": total / seconds, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * statistics.quantiles(latencies, n=100)[98] if total > 1
            else 1000 * latencies[0]}


def sequential(checkpoint: str | None, questions: list[str], count: int) -> dict[str, float]:
    """The reference: one question at a time through the Answerer, no HTTP."""
    from qa_seq2seq.decoding.answerer import Answerer

    answerer = Answerer.from_checkpoint(checkpoint)
    answerer.answer(questions[:1])  # warm up
    latencies = []
    start = time.perf_counter()
    for i in range(count):
        begin = time.perf_counter()
        answerer.answer([questions[i % len(questions)]])
        latencies.append(time.perf_counter() - begin)
    seconds = time.perf_counter() - start
    return {"clients": "loop", "requests": count, "ok": count, "failed": 0,
            "requests_per_s": count / seconds, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * statistics.quantiles(latencies, n=100)[98] if count > 1
            else 1000 * latencies[0]}


def start_server(checkpoint: str | None) -> tuple[subprocess.Popen, str, int]:
    command = [sys.executable, "-m", "qa_seq2seq.serve", "--port", "0", "--no-access-log"]
    server = subprocess.Popen(command + (["--checkpoint", checkpoint] if checkpoint else []),
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = server.stderr.readline()
    if " on http://" not in line:
        server.wait(timeout=30)
        raise ConfigError(f"the server did not start: {line.strip()} {server.stderr.read()[-500:]}")
    host, port = line.split(" on http://", 1)[1].split()[0].rsplit(":", 1)
    return server, host, int(port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="run directory or checkpoint (default: newest run)")
    parser.add_argument("--questions", help="JSON Lines file with a question field")
    parser.add_argument("--clients", default="1,64,200",
                        help="concurrent client counts, comma-separated")
    parser.add_argument("--requests", type=int, default=20, help="requests each client sends")
    parser.add_argument("--sequential", type=int, default=200,
                        help="questions the sequential loop answers (0: skip it)")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args(argv)
    try:
        args.clients = [int(c) for c in args.clients.split(",")]
    except ValueError:
        parser.error(f"--clients {args.clients}: give integers, e.g. 1,64,200")
    if min(args.clients) < 1 or args.requests < 1 or args.sequential < 0:
        parser.error("--clients and --requests must be >= 1, --sequential >= 0")
    return args


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    questions = read_questions(args.questions)
    rows = [sequential(args.checkpoint, questions, args.sequential)] if args.sequential else []
    server, host, port = start_server(args.checkpoint)
    try:
        asyncio.run(load(host, port, 1, 2, questions))  # warm up
        rows += [asyncio.run(load(host, port, n, args.requests, questions)) for n in args.clients]
    finally:
        server.terminate()
        server.wait(timeout=30)
    base = rows[0]["requests_per_s"] if args.sequential else None
    print(f"{'clients':>8} {'requests':>9} {'failed':>7} {'req/s':>9} {'vs loop':>8} "
          f"{'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        if base:
            row["vs_loop"] = row["requests_per_s"] / base
        if args.json:
            print(json.dumps(row))
        ratio = f"{row['vs_loop']:.2f}x" if base else "-"
        print(f"{row['clients']:>8} {row['requests']:>9} {row['failed']:>7} "
              f"{row['requests_per_s']:>9.1f} {ratio:>8} {row['p50_ms']:>8.1f} "
              f"{row['p99_ms']:>8.1f}")


if __name__ == "__main__":
    main()
