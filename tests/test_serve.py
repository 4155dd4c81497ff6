"""The HTTP endpoint: concurrent requests batched, the same answers as the Answerer, clear 4xx."""

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qa_seq2seq.answerer import Answerer
from qa_seq2seq.serve import Service, make_server

QUESTIONS = ["What is 3 plus 4?", "Where is Mary?", "Which is larger, 31 or 13?",
             "What is 12 minus 5?"]


pytestmark = pytest.mark.xdist_group(__name__)  # one xdist worker: module fixtures built once


@pytest.fixture(scope="module")
def answerer(smoke_run):
    return Answerer.from_checkpoint(smoke_run[0])


@pytest.fixture
def serve(answerer):
    """Start a server on a free port; returns (service, base url). The batcher starts only when
    the test says so, so that requests can queue up first."""
    servers = []

    def start(start_batcher=True, **limits):
        service = Service(answerer, **limits)
        server = make_server(service, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        if start_batcher:
            service.batcher.start()
        return service, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def post(url, body, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url + "/answer", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_concurrent_requests_are_answered_in_one_call_as_the_answerer_does(serve, answerer):
    service, url = serve(start_batcher=False)
    beam = {"search": "beam", "beam_size": 3, "n_best": 2}
    requests = [{"questions": [q]} for q in QUESTIONS] + [{"questions": QUESTIONS[:2], "decode": beam}]
    with ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(post, url, r) for r in requests]
        deadline = time.monotonic() + 30
        while service.batcher.jobs.qsize() < len(requests) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.batcher.jobs.qsize() == len(requests)
        service.batcher.start()
        replies = [f.result() for f in futures]
    assert service.batcher.calls == 2  # the four greedy requests together, the beam one alone
    greedy = answerer.answer(QUESTIONS)
    for (status, reply), expected in zip(replies, greedy):
        assert status == 200
        assert reply["answers"][0]["answer"] == expected.text
        assert reply["answers"][0]["score"] == pytest.approx(expected.score, abs=1e-5)
    expected = answerer.with_search("beam", beam_size=3, n_best=2).answer(QUESTIONS[:2])
    answers = replies[-1][1]["answers"]
    assert [[h["answer"] for h in a["n_best"]] for a in answers] == \
        [[h.text for h in e.n_best] for e in expected]


def test_a_question_the_model_cannot_read_gets_an_error_in_its_place(serve):
    _, url = serve()
    status, reply = post(url, {"questions": ["What is 3 plus 4?", " ", {"context": "x"}]})
    assert status == 200
    assert "answer" in reply["answers"][0]
    assert reply["answers"][1] == {"error": "empty question"}
    assert "field 'question' is missing" in reply["answers"][2]["error"]


@pytest.mark.parametrize("body, raw, status, message", [
    (None, b"{not json", 400, "not valid JSON"),
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
    ({"questions": ["a long question " * 20]}, None, 413, "at most 200"),
])
def test_bad_requests_get_a_4xx_with_the_reason(serve, body, raw, status, message):
    _, url = serve(max_questions=4, max_body_bytes=200)
    got, reply = post(url, body, raw)
    assert (got, list(reply)) == (status, ["error"])
    assert message in reply["error"]


def test_health_and_unknown_paths(serve, smoke_run):
    _, url = serve()
    with urllib.request.urlopen(url + "/health", timeout=30) as response:
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["decode"] == "greedy"
    assert health["model"].startswith(str(smoke_run[0]))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "/answers", timeout=30)
    assert e.value.code == 404


def test_a_failure_inside_the_model_is_a_500_without_details(serve, answerer, monkeypatch):
    _, url = serve()

    def broken(ids):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(answerer, "answer_ids", broken)
    status, reply = post(url, {"questions": ["What is 3 plus 4?"]})
    assert (status, reply) == (500, {"error": "internal error"})


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
