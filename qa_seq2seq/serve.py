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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http import HTTPStatus
from typing import Any

from qa_seq2seq import __version__
from qa_seq2seq.decoding.answerer_base import AnswererBase, QuestionError
from qa_seq2seq.deployment.answerer_cache import AnswererCache
from qa_seq2seq.deployment.micro_batcher import MicroBatcher
from qa_seq2seq.deployment.requests import MAX_QUESTIONS, BadRequest, parse_body, parse_request
from qa_seq2seq.errors import ConfigError, UserError
from qa_seq2seq.model_args import make_answerer, model_parser, parse_model_args
from qa_seq2seq.reporting import entry_point

log = logging.getLogger("qa_seq2seq.serve")
MAX_SEARCHES = 64  # decoding choices kept ready; the oldest is forgotten past this


class Service:
    """What answers ``POST /answer``: the request parser (deployment.requests), the answerers
    for each requested search (deployment.answerer_cache) and the micro-batcher that groups
    requests of one search into one model call (deployment.micro_batcher).

    The model runs on one thread of its own, one call at a time: answering, and the probe that
    checks a new search's options. Tokenising runs in Starlette's thread pool; the rest on the
    event loop.
    """

    def __init__(self, answerer: AnswererBase, max_questions: int = MAX_QUESTIONS,
                 max_body_bytes: int = 1 << 20, max_queue: int = 1024, timeout: float = 30.0):
        self.answerer, self.max_questions = answerer, max_questions
        self.max_body_bytes = max_body_bytes
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="qa_seq2seq-model")
        self.searches = AnswererCache(answerer, MAX_SEARCHES)
        self.batcher = MicroBatcher(self._answer_ids, max(max_questions, answerer.batch_size),
                                    max_queue, timeout)
        self.pending = 0  # requests being answered

    @property
    def calls(self) -> int:
        """Model calls made to answer requests."""
        return self.batcher.calls

    def running(self, app: Any = None) -> contextlib.AbstractAsyncContextManager:
        """The batching worker, for as long as the app runs (Starlette's lifespan)."""
        return self.batcher.running()

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": str(self.answerer.path), "decode": self.answerer.decode,
                "options": self.answerer.options, "max_questions": self.max_questions,
                "pending": self.pending}

    async def answer(self, body: Any) -> dict[str, Any]:
        """The reply to a parsed request body: each question's n-best list, or why it cannot
        be read, in order. Raises BadRequest."""
        from starlette.concurrency import run_in_threadpool

        self.pending += 1
        try:
            request = parse_request(body, self.max_questions, self.answerer.reader.answer_limit)
            answerer = await self.searches.get(request.key, request.search, request.options,
                                               self._with_search)
            sources = await run_in_threadpool(_read, answerer, request.questions)
            ids = [s for s in sources if not isinstance(s, str)]
            results = iter(await self.batcher.submit(answerer, ids) if ids else [])
            return {"answers": [{"error": s} if isinstance(s, str) else _rendered(next(results))
                                for s in sources]}
        finally:
            self.pending -= 1

    async def _on_model_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.model_thread, function, *args)

    async def _with_search(self, search: str | None, options: dict[str, Any]) -> AnswererBase:
        """An answerer for another search (checking its options runs it once on a probe)."""
        try:
            return await self._on_model_thread(partial(self.answerer.with_search, search, **options))
        except UserError as e:
            raise BadRequest(f"decode: {e}") from None

    async def _answer_ids(self, answerer: AnswererBase, ids: list[list[int]]) -> list:
        return await self._on_model_thread(answerer.answer_ids, ids)


def _read(answerer: AnswererBase, questions: list[Any]) -> list[list[int] | str]:
    """Each question's token ids, or the reason the model cannot read it."""
    sources: list[list[int] | str] = []
    for question in questions:
        try:
            sources.append(answerer.source(question)[1])
        except QuestionError as e:
            sources.append(str(e))
    return sources


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
            return Reply(await service.answer(parse_body(await _body(request, service.max_body_bytes))))
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


def listen(host: str, port: int) -> socket.socket:
    """A listening socket with a deep backlog (bursts of connections wait, none is reset).

    Made with its protocol named, as asyncio checks before it turns off Nagle's algorithm on the
    connections (else a keep-alive reply waits for a delayed ACK)."""
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
    """The server's arguments: the shared model arguments, the address and the limits."""
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
    """Serve the model until stopped; returns the exit status."""
    args = parse_args(argv)
    try:
        import uvicorn  # noqa: F401  (here, to refuse before anything loads)
    except ImportError:
        raise ConfigError("qa-seq2seq-serve needs the serve extra: pip install -e '.[serve]' "
                          "(make install includes it)") from None
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stderr)
    service = Service(make_answerer(args), max_questions=args.max_questions,
                      max_body_bytes=args.max_body_bytes, max_queue=args.max_queue,
                      timeout=args.timeout)
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
