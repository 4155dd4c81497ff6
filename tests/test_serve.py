"""The HTTP endpoint: concurrent requests batched, the same answers as the Answerer, bounded
options and queue, clear 4xx/503, nothing dropped under load."""

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qa_seq2seq.decoding.answerer import Answerer
from qa_seq2seq.serve import Service
from tests.conftest import serving

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["What is 3 plus 4?", "Where is Mary?", "Which is larger, 31 or 13?",
             "What is 12 minus 5?"]


pytestmark = pytest.mark.xdist_group(__name__)  # one xdist worker: module fixtures built once


@pytest.fixture(scope="module")
def answerer(smoke_run):
    return Answerer.from_checkpoint(smoke_run[0])


@pytest.fixture
def serve(answerer):
    """Start a server for a Service over ``answerer`` with these limits; returns (service, url)."""
    with contextlib.ExitStack() as stack:
        def start(**limits):
            service = Service(answerer, **limits)
            return service, stack.enter_context(serving(service))

        yield start


def post(url, body, raw=None, headers=None):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url + "/answer", data=data, method="POST",
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Gate:
    """Holds the model's first call until ``open()``: requests queue up behind it meanwhile."""

    def __init__(self, answerer, monkeypatch):
        self.entered, self.released = threading.Event(), threading.Event()
        original = type(answerer).answer_ids

        def answer_ids(this, ids):
            self.entered.set()
            self.released.wait(60)
            return original(this, ids)

        monkeypatch.setattr(type(answerer), "answer_ids", answer_ids)

    def open(self):
        self.released.set()


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_concurrent_requests_are_answered_in_one_call_as_the_answerer_does(serve, answerer,
                                                                          monkeypatch):
    expected_greedy = answerer.answer(QUESTIONS)
    beam = {"search": "beam", "beam_size": 3, "n_best": 2}
    expected_beam = answerer.with_search("beam", beam_size=3, n_best=2).answer(QUESTIONS[:2])
    service, url = serve()
    gate = Gate(answerer, monkeypatch)
    requests = [{"questions": [q]} for q in QUESTIONS] + [{"questions": QUESTIONS[:2], "decode": beam}]
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        first = pool.submit(post, url, {"questions": ["What is 1 plus 1?"]})
        assert gate.entered.wait(30)  # the model is busy with the first request
        futures = [pool.submit(post, url, r) for r in requests]
        wait_for(lambda: service.pending == len(requests) + 1)
        gate.open()
        replies = [f.result() for f in futures]
        assert first.result()[0] == 200
    assert service.calls == 3  # the first; the four greedy requests together; the beam one
    for (status, reply), expected in zip(replies, expected_greedy):
        assert status == 200
        assert reply["answers"][0]["answer"] == expected.text
        assert reply["answers"][0]["score"] == pytest.approx(expected.score, abs=1e-5)
    answers = replies[-1][1]["answers"]
    assert [[h["answer"] for h in a["n_best"]] for a in answers] == \
        [[h.text for h in e.n_best] for e in expected_beam]


def test_a_question_the_model_cannot_read_gets_an_error_in_its_place(serve):
    _, url = serve()
    raw = b'{"questions": ["What is 3 plus 4?", " ", {"context": "x"}, "\\ud800"]}'
    status, reply = post(url, None, raw=raw)
    assert status == 200
    assert "answer" in reply["answers"][0]
    assert reply["answers"][1] == {"error": "empty question"}
    assert "field 'question' is missing" in reply["answers"][2]["error"]
    assert "lone surrogate" in reply["answers"][3]["error"]


@pytest.mark.parametrize("body, raw, status, message", [
    (None, b"{not json", 400, "not valid JSON"),
    (None, b"[" * 100_000, 400, "not valid JSON (nested too deeply)"),
    (["What?"], None, 400, 'must be a JSON object {"questions"'),
    ({"questions": "What?"}, None, 400, 'must be a JSON object {"questions"'),
    ({"questions": ["What?"], "beam_size": 5}, None, 400, "unknown field(s) ['beam_size']"),
    ({"questions": []}, None, 400, "0 questions: send 1 to 4"),
    ({"questions": ["q"] * 5}, None, 400, "5 questions: send 1 to 4"),
    ({"questions": ["q"], "decode": "beam"}, None, 400, '"decode" must be an object'),
    ({"questions": ["q"], "decode": {"search": "beam", "beam_szie": 5}}, None, 400,
     "decode: beam_szie: not an option of decode=beam"),
    ({"questions": ["q"], "decode": {"search": "beam", "beam_size": 0}}, None, 400,
     "decode.beam_size must be >= 1"),
    ({"questions": ["q"], "decode": {"search": "beam", "beam_size": 17}}, None, 400,
     "decode.beam_size=17: at most 16"),
    ({"questions": ["q"], "decode": {"search": "beam", "beam_size": 4, "n_best": 5}}, None, 400,
     "n_best"),
    ({"questions": ["q"], "decode": {"max_length": 12000}}, None, 400,
     "decode.max_length=12000: at most 65 (the longest answer this model was trained on"),
])
def test_bad_requests_get_a_4xx_with_the_reason(serve, body, raw, status, message):
    _, url = serve(max_questions=4, max_body_bytes=400_000)
    got, reply = post(url, body, raw)
    assert (got, list(reply)) == (status, ["error"]), reply
    assert message in reply["error"]


def raw_request(url, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are and read the reply until the server closes or 5 s pass."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head + body)
        reply = b""
        try:
            while chunk := conn.recv(65536):
                reply += chunk
                if b"\r\n\r\n" in reply and b"Connection: close" not in head:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return reply


def test_the_body_size_is_enforced_however_it_is_framed(serve):
    _, url = serve(max_body_bytes=200)
    declared = raw_request(url, b"POST /answer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                                b"Connection: close\r\n\r\n", b"x" * 500)
    assert declared.startswith(b"HTTP/1.1 413")
    chunk = b'{"questions": ["' + b"a" * 300 + b'"]}'
    chunked = raw_request(url, b"POST /answer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                               b"Connection: close\r\n\r\n",
                          b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
    assert chunked.startswith(b"HTTP/1.1 413")
    negative = raw_request(url, b"POST /answer HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n"
                                b"Connection: close\r\n\r\n", b"x" * 10_000)
    assert negative.startswith(b"HTTP/1.1 400")  # uvicorn's refusal, in JSON as every other is
    head, _, body = negative.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower()
    assert "Invalid HTTP request" in json.loads(body)["error"]


def test_a_full_queue_and_a_slow_answer_get_503_with_retry_after(serve, answerer, monkeypatch):
    service, url = serve(max_queue=2, timeout=1.0)
    gate = Gate(answerer, monkeypatch)
    with ThreadPoolExecutor(3) as pool:
        held = [pool.submit(post, url, {"questions": [q]}) for q in QUESTIONS[:2]]
        wait_for(lambda: service.pending == 2)
        request = urllib.request.Request(url + "/answer", method="POST",
                                         data=json.dumps({"questions": ["q"]}).encode())
        with pytest.raises(urllib.error.HTTPError) as busy:
            urllib.request.urlopen(request, timeout=30)
        assert busy.value.code == 503 and busy.value.headers["Retry-After"] == "1"
        assert "busy: 2 requests are waiting" in json.loads(busy.value.read())["error"]
        for future in held:  # the model never answered within the timeout
            status, reply = future.result()
            assert status == 503 and "not answered within 1 s" in reply["error"]
        gate.open()
    wait_for(lambda: service.pending == 0)
    status, reply = post(url, {"questions": QUESTIONS[:1]})  # and it goes on serving
    assert status == 200 and reply["answers"][0]["answer"] == answerer.answer(QUESTIONS[:1])[0].text


def test_health_and_unknown_paths(serve, smoke_run):
    _, url = serve()
    with urllib.request.urlopen(url + "/health", timeout=30) as response:
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["decode"] == "greedy"
    assert health["model"].startswith(str(smoke_run[0]))
    for path, method, code in (("/answers", "GET", 404), ("/answer", "GET", 405)):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(url + path, method=method), timeout=30)
        assert e.value.code == code and "POST /answer" in json.loads(e.value.read())["error"]


def test_a_failure_inside_the_model_is_a_500_without_details(serve, answerer, monkeypatch):
    _, url = serve()

    def broken(self, ids):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(type(answerer), "answer_ids", broken)
    status, reply = post(url, {"questions": ["What is 3 plus 4?"]})
    assert (status, reply) == (500, {"error": "internal error"})


@pytest.mark.cli
def test_the_installed_command_serves_and_refuses_a_folder_that_is_not_a_model(smoke_run, tmp_path):
    command = [str(Path(sys.executable).parent / "qa-seq2seq-serve")]
    refused = subprocess.run([*command, "--model", str(tmp_path)], capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "without checkpoints/best.ckpt" in refused.stderr
    assert "Traceback" not in refused.stderr
    server = subprocess.Popen([*command, "--model", str(smoke_run[0]), "--port", "0"],
                              stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        assert "serving" in line, line
        url = line.split(" on ", 1)[1].split()[0]
        status, reply = post(url, {"questions": QUESTIONS})
        assert status == 200 and len(reply["answers"]) == len(QUESTIONS)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.cli
def test_200_concurrent_clients_are_all_answered(smoke_run):
    """make bench-serve at 200 clients on the smoke model: no request fails or is reset."""
    result = subprocess.run([sys.executable, "scripts/bench_serve.py", "--checkpoint",
                             str(smoke_run[0]), "--clients", "200", "--requests", "2",
                             "--sequential", "0", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert row["clients"] == 200 and row["requests"] == 400
    assert row["failed"] == 0 and row["ok"] == 400, row


def test_the_model_runs_on_its_one_thread_also_to_check_a_new_search(serve, answerer, monkeypatch):
    threads = set()
    for name in ("answer_ids", "with_search"):
        original = getattr(type(answerer), name)

        def recorded(this, *args, original=original, **kwargs):
            threads.add(threading.current_thread().name)
            return original(this, *args, **kwargs)

        monkeypatch.setattr(type(answerer), name, recorded)
    _, url = serve()
    status, _ = post(url, {"questions": QUESTIONS[:2], "decode": {"search": "beam", "beam_size": 2}})
    assert status == 200 and len(threads) == 1 and threads.pop().startswith("qa_seq2seq-model")
