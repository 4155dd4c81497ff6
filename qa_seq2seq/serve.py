"""Answer questions over HTTP: a small JSON endpoint that batches concurrent requests.

    qa-seq2seq-serve --model exported/toy-onnx --port 8000
    curl -s localhost:8000/answer -d '{"questions": ["What is 3 plus 4?"]}'
    curl -s localhost:8000/answer -d '{"questions": ["Where is Mary?"],
                                        "decode": {"search": "beam", "beam_size": 5, "n_best": 3}}'
    curl -s localhost:8000/health

``POST /answer`` takes ``{"questions": [...], "decode": {...}}``: questions are strings or
objects with the model's fields, as at the decoding CLI; ``decode`` (optional) names a
``search`` and overrides its options, checked by name as at the CLI. The reply is ``{"answers":
[{"answer", "score", "n_best": [{"answer", "score", "normalized_score", "finished"}]}]}`` in
order; a question the model cannot read gets ``{"error": ...}`` in its place. A body that is not
such JSON, an unknown option or a bad value gets 400 with the reason; a body over
``--max-body-bytes`` 413; more than ``--max-questions`` questions 400. Never a traceback.

One worker thread runs the model: requests that arrive while it is busy, with the same decoding
options, are answered together in one call (length-sorted batches of ``--batch-size``). Built on
the standard library's ``http.server`` (threaded): a JSON endpoint with one route does not need
a web framework, and the ONNX runtime path stays free of torch and of any other dependency.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qa_seq2seq.decode import make_answerer, model_parser, parse_model_args
from qa_seq2seq.errors import ConfigError, UserError, entry_point
from qa_seq2seq.questions import Answering, QuestionError

log = logging.getLogger("qa_seq2seq.serve")


class BadRequest(Exception):
    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


class Job:
    """One request's tokenised questions for one search, and the event its handler waits on."""

    def __init__(self, key: str, answerer: Answering, ids: list[list[int]]):
        self.key, self.answerer, self.ids = key, answerer, ids
        self.done, self.result, self.error = threading.Event(), None, None


class Batcher:
    """A worker thread that answers queued jobs, those with the same search together."""

    def __init__(self, max_questions: int):
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.max_questions, self.calls = max_questions, 0
        self.thread = threading.Thread(target=self._work, daemon=True, name="qa_seq2seq-batcher")

    def start(self) -> None:
        self.thread.start()

    def submit(self, job: Job) -> list:
        self.jobs.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _work(self) -> None:
        waiting: list[Job] = []
        while True:
            if not waiting:
                waiting.append(self.jobs.get())
            while True:  # everything that queued up meanwhile
                try:
                    waiting.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            key = waiting[0].key
            batch, size = [], 0
            for job in [j for j in waiting if j.key == key]:
                if batch and size + len(job.ids) > self.max_questions:
                    break
                batch.append(job)
                size += len(job.ids)
            waiting = [j for j in waiting if j not in batch]
            self._run(batch)

    def _run(self, batch: list[Job]) -> None:
        self.calls += 1
        try:
            results = batch[0].answerer.answer_ids([ids for job in batch for ids in job.ids])
        except Exception as e:  # reported to each waiting request, not raised in the worker
            for job in batch:
                job.error = e
                job.done.set()
            return
        for job in batch:
            job.result, results = results[:len(job.ids)], results[len(job.ids):]
            job.done.set()


class Service:
    """The model, the answerers for each requested search, and the batcher."""

    def __init__(self, answerer: Answering, max_questions: int = 256, max_body_bytes: int = 1 << 20):
        self.answerer, self.max_questions, self.max_body_bytes = answerer, max_questions, max_body_bytes
        self.answerers: dict[str, Answering] = {"": answerer}
        self.batcher = Batcher(max(max_questions, answerer.batch_size))
        self.lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": str(self.answerer.path), "decode": self.answerer.decode,
                "options": self.answerer.options, "max_questions": self.max_questions}

    def answer(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("questions"), list):
            raise BadRequest('the body must be a JSON object {"questions": [...], "decode": {...}}')
        if unknown := sorted(set(body) - {"questions", "decode"}):
            raise BadRequest(f"unknown field(s) {unknown}: the fields are questions and decode")
        questions = body["questions"]
        if not 1 <= len(questions) <= self.max_questions:
            raise BadRequest(f"{len(questions)} questions: send 1 to {self.max_questions} a request")
        answerer, key = self._answerer(body.get("decode"))
        sources: list[list[int] | str] = []
        for question in questions:
            try:
                sources.append(answerer.source(question)[1])
            except QuestionError as e:
                sources.append(str(e))
        ids = [s for s in sources if not isinstance(s, str)]
        results = iter(self.batcher.submit(Job(key, answerer, ids)) if ids else [])
        return {"answers": [{"error": s} if isinstance(s, str) else _rendered(next(results))
                            for s in sources]}

    def _answerer(self, decode: Any) -> tuple[Answering, str]:
        if decode is None:
            return self.answerer, ""
        if not isinstance(decode, dict):
            raise BadRequest('"decode" must be an object, e.g. {"search": "beam", "beam_size": 5}')
        key = json.dumps(decode, sort_keys=True)
        with self.lock:
            if key not in self.answerers:
                options = dict(decode)
                try:
                    self.answerers[key] = self.answerer.with_search(options.pop("search", None),
                                                                    **options)
                except UserError as e:
                    raise BadRequest(f"decode: {e}") from None
                if len(self.answerers) > 64:  # bounded: forget the oldest choice
                    self.answerers.pop(next(k for k in self.answerers if k))
            return self.answerers[key], key


def _rendered(hypotheses: Sequence) -> dict[str, Any]:
    return {"answer": hypotheses[0].text, "score": hypotheses[0].score,
            "n_best": [{"answer": h.text, "score": h.score, "normalized_score": h.normalized_score,
                        "finished": h.finished} for h in hypotheses]}


def make_server(service: Service, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """The HTTP server for ``service`` (not yet serving: call ``serve_forever``)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "qa_seq2seq"

        def do_GET(self) -> None:
            if self.path != "/health":
                return self._reply(HTTPStatus.NOT_FOUND, {"error": "GET /health, POST /answer"})
            self._reply(HTTPStatus.OK, service.health())

        def do_POST(self) -> None:
            if self.path != "/answer":
                return self._reply(HTTPStatus.NOT_FOUND, {"error": "GET /health, POST /answer"})
            try:
                self._reply(HTTPStatus.OK, service.answer(self._body()))
            except BadRequest as e:
                self._reply(e.status, {"error": str(e)})
            except Exception:  # the reason goes to the server's log, never to the client
                log.exception("POST /answer failed")
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

        def _body(self) -> Any:
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                raise BadRequest("a Content-Length header is required",
                                 HTTPStatus.LENGTH_REQUIRED) from None
            if length > service.max_body_bytes:
                self.close_connection = True  # the unread body is not drained
                raise BadRequest(f"the body has {length} bytes; at most {service.max_body_bytes}",
                                 HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            try:
                return json.loads(self.rfile.read(length))
            except (ValueError, UnicodeDecodeError) as e:
                raise BadRequest(f"the body is not valid JSON ({e})") from None

        def _reply(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s " + format, self.address_string(), *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def parse_args(argv: list[str] | None = None):
    parser = model_parser(
        "qa-seq2seq-serve", __doc__.split("\n\n")[0],
        "  qa-seq2seq-serve --model exported/toy-onnx --port 8000\n"
        "  qa-seq2seq-serve --checkpoint outputs/toy_lstm/<run> --decode beam beam_size=5\n"
        "  curl -s localhost:8000/answer -d '{\"questions\": [\"What is 3 plus 4?\"]}'")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument("--max-questions", type=int, default=256,
                        help="most questions a request may carry")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20,
                        help="largest request body accepted")
    args = parse_model_args(parser, argv)
    if args.max_questions < 1 or args.max_body_bytes < 1:
        parser.error("--max-questions and --max-body-bytes must be >= 1")
    return args


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stderr)
    service = Service(make_answerer(args), args.max_questions, args.max_body_bytes)
    try:
        server = make_server(service, args.host, args.port)
    except OSError as e:
        raise ConfigError(f"--host {args.host} --port {args.port}: cannot listen there ({e.strerror})"
                          "; choose another --port") from None
    service.batcher.start()
    host, port = server.server_address[:2]
    print(f"serving {service.answerer.path} on http://{host}:{port} (POST /answer, GET /health); "
          "Ctrl-C stops", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
