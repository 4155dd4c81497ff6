"""Answer questions over HTTP: a JSON endpoint on uvicorn + starlette that batches concurrent
requests.

    qa-seq2seq-serve --model exported/toy-onnx --port 8000
    curl -s localhost:8000/answer -d '{"questions": ["What is 3 plus 4?"]}'
    curl -s localhost:8000/answer -d '{"questions": ["Where is Mary?"],
                                        "decode": {"search": "beam", "beam_size": 5, "n_best": 3}}'
    curl -s localhost:8000/health

``POST /answer`` takes ``{"questions": [...], "decode": {...}}``: questions are strings or
objects with the model's fields, as at the decoding CLI; ``decode`` (optional) names a
``search`` and overrides its options, checked by name as at the CLI and bounded
(``beam_size`` <= 16, ``max_length`` <= the longest answer the model was trained on). The reply
is ``{"answers": [{"answer", "score", "n_best": [{"answer", "score", "normalized_score",
"finished"}]}]}`` in order; a question the model cannot read gets ``{"error": ...}`` in its place.
A body that is not such JSON, an unknown option or a value out of bounds gets 400 with the
reason; a body over ``--max-body-bytes`` 413; a full queue or a request not answered within
``--timeout`` 503 with ``Retry-After``. Never a traceback.

One thread runs the model: requests that wait while it is busy, with the same decoding options,
are answered together in one call (length-sorted batches of ``--batch-size``). Reading,
validating and tokenising a request happen outside that thread. Needs the ``serve`` extra
(uvicorn, starlette); the ONNX runtime path stays free of torch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import socket
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from qa_seq2seq import __version__
from qa_seq2seq.decoding.answering import Answering, QuestionError
from qa_seq2seq.errors import ConfigError, UserError
from qa_seq2seq.model_args import make_answerer, model_parser, parse_model_args
from qa_seq2seq.reporting import entry_point

log = logging.getLogger("qa_seq2seq.serve")
MAX_QUESTIONS = 256  # a request's questions, at most
MAX_BEAM = 16
MAX_SEARCHES = 64  # decoding choices kept ready; the oldest is forgotten past this


class BadRequest(Exception):
    """A request answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST,
                 retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.headers = {} if retry_after is None else {"Retry-After": str(retry_after)}


@dataclass
class Job:
    """One request's tokenised questions for one search, and the future its handler awaits."""

    key: str
    answerer: Answering
    ids: list[list[int]]
    future: asyncio.Future = field(repr=False)


class Service:
    """The model, the answerers for each requested search, and the queue that batches them.

    ``max_queue`` requests may wait at once (more: 503); each waits at most ``timeout`` seconds.
    Requests are validated and tokenised in Starlette's thread pool; the model runs in one
    thread of its own, one batch at a time.
    """

    def __init__(self, answerer: Answering, max_questions: int = MAX_QUESTIONS,
                 max_body_bytes: int = 1 << 20, max_queue: int = 1024, timeout: float = 30.0):
        self.answerer, self.max_questions = answerer, max_questions
        self.max_body_bytes, self.max_queue, self.timeout = max_body_bytes, max_queue, timeout
        self.max_batch = max(max_questions, answerer.batch_size)
        self.answerers: dict[str, Answering] = {"": answerer}
        self.lock = threading.Lock()  # guards ``answerers`` only, never a model call
        self.pending = 0  # requests submitted and not yet answered
        self.calls = 0  # model calls made
        self.waiting: list[Job] = []
        self.wakeup: asyncio.Event | None = None
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="qa_seq2seq-model")

    @contextlib.asynccontextmanager
    async def running(self, app: Any = None) -> AsyncIterator[None]:
        """The batching worker, for as long as the app runs (Starlette's lifespan)."""
        self.wakeup = asyncio.Event()
        worker = asyncio.create_task(self._work())
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": str(self.answerer.path), "decode": self.answerer.decode,
                "options": self.answerer.options, "max_questions": self.max_questions,
                "pending": self.pending}

    async def answer(self, body: Any) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        key, answerer, sources = await run_in_threadpool(self.prepare, body)
        ids = [s for s in sources if not isinstance(s, str)]
        results = iter(await self.submit(key, answerer, ids) if ids else [])
        return {"answers": [{"error": s} if isinstance(s, str) else _rendered(next(results))
                            for s in sources]}

    def prepare(self, body: Any) -> tuple[str, Answering, list[list[int] | str]]:
        """Check a request and tokenise its questions: the search's key, its answerer, and each
        question's token ids (or the reason it cannot be read)."""
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
        return key, answerer, sources

    def _answerer(self, decode: Any) -> tuple[Answering, str]:
        if decode is None:
            return self.answerer, ""
        if not isinstance(decode, dict):
            raise BadRequest('"decode" must be an object, e.g. {"search": "beam", "beam_size": 5}')
        key = json.dumps(decode, sort_keys=True)
        with self.lock:
            if key in self.answerers:
                return self.answerers[key], key
        options = dict(decode)
        search = options.pop("search", None)
        self._check_bounds(options)
        try:  # outside the lock: checking the options runs the search once on a probe
            answerer = self.answerer.with_search(search, **options)
        except UserError as e:
            raise BadRequest(f"decode: {e}") from None
        with self.lock:
            self.answerers[key] = answerer
            if len(self.answerers) > MAX_SEARCHES:
                self.answerers.pop(next(k for k in self.answerers if k))
        return answerer, key

    def _check_bounds(self, options: dict[str, Any]) -> None:
        """Refuse options that would make one request cost what many should."""
        limit = self.answerer.reader.answer_limit
        for key, most in (("beam_size", MAX_BEAM), ("n_best", MAX_BEAM), ("max_length", limit)):
            value = options.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > most:
                why = "the longest answer this model was trained on, <eos> included" \
                    if key == "max_length" else "over HTTP"
                raise BadRequest(f"decode.{key}={value}: at most {most} ({why})")

    async def submit(self, key: str, answerer: Answering, ids: list[list[int]]) -> list:
        """Queue a request's questions and wait for their n-best lists."""
        if self.pending >= self.max_queue:
            raise BadRequest(f"busy: {self.pending} requests are waiting; retry shortly",
                             HTTPStatus.SERVICE_UNAVAILABLE, retry_after=1)
        job = Job(key, answerer, ids, asyncio.get_running_loop().create_future())
        self.pending += 1
        self.waiting.append(job)
        self.wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.timeout)
        except asyncio.TimeoutError:
            job.future.cancel()  # the worker skips it
            raise BadRequest(f"not answered within {self.timeout:g} s: the server is "
                             "overloaded; retry shortly", HTTPStatus.SERVICE_UNAVAILABLE,
                             retry_after=max(1, round(self.timeout))) from None
        finally:
            self.pending -= 1

    async def _work(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while True:
                self.waiting = [job for job in self.waiting if not job.future.done()]
                if not self.waiting:
                    break
                key, batch, size = self.waiting[0].key, [], 0
                for job in self.waiting:
                    if job.key == key and (not batch or size + len(job.ids) <= self.max_batch):
                        batch.append(job)
                        size += len(job.ids)
                taken = {id(job) for job in batch}
                self.waiting = [job for job in self.waiting if id(job) not in taken]
                await self._run(batch)

    async def _run(self, batch: list[Job]) -> None:
        self.calls += 1
        ids = [question for job in batch for question in job.ids]
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.model_thread, batch[0].answerer.answer_ids,
                                                 ids)
        except Exception as e:  # reported to each waiting request, not raised in the worker
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        for job in batch:
            mine, results = results[:len(job.ids)], results[len(job.ids):]
            if not job.future.done():
                job.future.set_result(mine)


def _rendered(hypotheses: Sequence) -> dict[str, Any]:
    return {"answer": hypotheses[0].text, "score": hypotheses[0].score,
            "n_best": [{"answer": h.text, "score": h.score, "normalized_score": h.normalized_score,
                        "finished": h.finished} for h in hypotheses]}


def make_app(service: Service) -> Any:
    """The Starlette application: ``GET /health``, ``POST /answer``."""
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    class Reply(JSONResponse):
        def render(self, content: Any) -> bytes:  # as json.dumps writes them (scores may be -inf)
            return json.dumps(content, ensure_ascii=False).encode()

    async def health(request: Request) -> Reply:
        return Reply(service.health())

    async def answer(request: Request) -> Reply:
        try:
            return Reply(await service.answer(_parsed(await _body(request, service.max_body_bytes))))
        except BadRequest as e:
            return Reply({"error": str(e)}, e.status, headers=e.headers)
        except ClientDisconnect:
            return Reply({"error": "the client left"}, HTTPStatus.BAD_REQUEST)
        except Exception:  # the reason goes to the server's log, never to the client
            log.exception("POST /answer failed")
            return Reply({"error": "internal error"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    async def elsewhere(request: Request, error: Exception) -> Reply:
        return Reply({"error": "GET /health, POST /answer"}, getattr(error, "status_code", 404))

    return Starlette(routes=[Route("/health", health, methods=["GET"]),
                             Route("/answer", answer, methods=["POST"])],
                     exception_handlers={404: elsewhere, 405: elsewhere},
                     lifespan=service.running)


async def _body(request: Any, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes, by its declared length or as it
    arrives (uvicorn has already refused framing it cannot parse, such as a negative length)."""
    declared = request.headers.get("content-length", "")
    too_large = BadRequest(f"the body is larger than {limit} bytes",
                           HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not valid JSON ({e})") from None
    except RecursionError:
        raise BadRequest("the body is not valid JSON (nested too deeply)") from None


def listen(host: str, port: int) -> socket.socket:
    """A listening socket with a deep backlog (bursts of connections wait, none is reset).

    Made with its protocol named, as asyncio checks before it turns off Nagle's algorithm on the
    connections (else a keep-alive reply waits ~40 ms for a delayed ACK)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise ConfigError(f"--host {host}: {e.strerror}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(4096)
        return sock
    except OSError as e:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({e.strerror}); "
                          "choose another --port") from None


def parse_args(argv: list[str] | None = None):
    parser = model_parser(
        "qa-seq2seq-serve", __doc__.split("\n\n")[0],
        "  qa-seq2seq-serve --model exported/toy-onnx --port 8000\n"
        "  qa-seq2seq-serve --checkpoint outputs/toy_lstm/<run> --decode beam beam_size=5\n"
        "  curl -s localhost:8000/answer -d '{\"questions\": [\"What is 3 plus 4?\"]}'", __version__)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument("--max-questions", type=int, default=MAX_QUESTIONS,
                        help=f"most questions a request may carry (1 to {MAX_QUESTIONS})")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20,
                        help="largest request body accepted")
    parser.add_argument("--max-queue", type=int, default=1024,
                        help="requests that may wait at once; more get 503 with Retry-After")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds a request may wait for its answers; then 503")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                        help="log every request (uvicorn's access log)")
    args = parse_model_args(parser, argv)
    if not 1 <= args.max_questions <= MAX_QUESTIONS:
        parser.error(f"--max-questions must be 1 to {MAX_QUESTIONS}")
    if args.max_body_bytes < 1 or args.max_queue < 1 or not args.timeout > 0:
        parser.error("--max-body-bytes, --max-queue and --timeout must be > 0")
    return args


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvicorn  # noqa: F401  (here, to refuse before anything loads)
    except ImportError:
        raise ConfigError("qa-seq2seq-serve needs the serve extra: pip install -e '.[serve]' "
                          "(make install includes it)") from None
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stderr)
    service = Service(make_answerer(args), args.max_questions, args.max_body_bytes,
                      args.max_queue, args.timeout)
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    print(f"serving {service.answerer.path} on http://{host}:{port} (POST /answer, GET /health); "
          "Ctrl-C stops", file=sys.stderr, flush=True)
    server(service, access_log=args.access_log).run(sockets=[sock])
    return 0


def server(service: Service, access_log: bool = True, log_level: str = "info") -> Any:
    """The uvicorn server for ``service``: HTTP/1.1 by h11, whose refusal of a request it cannot
    parse (a negative Content-Length, a malformed header) is JSON with a reason, as every other
    refusal is."""
    import h11
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class JsonRefusals(H11Protocol):
        def send_400_response(self, msg: str) -> None:  # uvicorn's hook for unparsable requests
            body = json.dumps({"error": f"{msg} (send POST /answer with a JSON body)"}).encode()
            headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                       (b"content-length", str(len(body)).encode())]
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return uvicorn.Server(uvicorn.Config(make_app(service), http=JsonRefusals,
                                         access_log=access_log, log_level=log_level,
                                         timeout_graceful_shutdown=5))


if __name__ == "__main__":
    sys.exit(main())
