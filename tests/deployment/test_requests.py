"""deployment/requests.py: what a client may ask of POST /answer, checked without a model."""

import pytest

from qa_seq2seq.deployment.requests import MAX_BEAM, BadRequest, parse_body, parse_request


def test_a_request_gives_its_questions_search_options_and_a_key_per_decoding_choice():
    plain = parse_request({"questions": ["q"]}, 4, 10)
    assert plain == (["q"], None, {}, "")
    beam = parse_request({"questions": ["q", {"question": "r"}],
                          "decode": {"search": "beam", "beam_size": 3}}, 4, 10)
    assert (beam.search, beam.options) == ("beam", {"beam_size": 3})
    same = parse_request({"decode": {"beam_size": 3, "search": "beam"}, "questions": ["x"]}, 4, 10)
    assert beam.key == same.key != ""  # the same choice, however its keys are ordered


@pytest.mark.parametrize("body,message", [
    ([], "the body must be a JSON object"),
    ({"questions": "q"}, "the body must be a JSON object"),
    ({"questions": ["q"], "n": 1}, "unknown field(s) ['n']"),
    ({"questions": []}, "0 questions: send 1 to 4 a request"),
    ({"questions": ["q"] * 5}, "5 questions: send 1 to 4"),
    ({"questions": ["q"], "decode": "beam"}, '"decode" must be an object'),
    ({"questions": ["q"], "decode": {"beam_size": MAX_BEAM + 1}}, f"at most {MAX_BEAM} (over HTTP)"),
    ({"questions": ["q"], "decode": {"n_best": 100}}, "decode.n_best=100: at most"),
    ({"questions": ["q"], "decode": {"max_length": 11}}, "at most 10 (the longest answer"),
])
def test_a_request_out_of_bounds_is_refused_with_the_reason(body, message):
    with pytest.raises(BadRequest, match=None) as refused:
        parse_request(body, 4, 10)
    assert message in str(refused.value) and refused.value.status == 400


def test_a_body_that_is_not_json_is_refused_with_the_reason():
    assert parse_body(b'{"questions": ["q"]}') == {"questions": ["q"]}
    for body, reason in ((b"{", "not valid JSON"), (b"\xff", "not valid JSON"),
                         (b"[" * 100_000, "not valid JSON")):
        with pytest.raises(BadRequest, match=reason):
            parse_body(body)
