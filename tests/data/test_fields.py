import pytest

from qa_seq2seq.data.fields import SourceBuilder, get_path, template_fields
from qa_seq2seq.data.tokenizer import Tokenizer
from qa_seq2seq.errors import ConfigError

ROW = {"question": "Where is Mary?", "context": "Mary went to the kitchen. " * 20,
       "answers": {"text": ["kitchen", "the kitchen"], "answer_start": [17, 13]}}


def test_nested_paths():
    assert get_path(ROW, "answers.text[0]") == "kitchen"
    assert get_path(ROW, "answers.text[1]") == "the kitchen"
    assert get_path(ROW, "answers.text[5]") is None and get_path(ROW, "nope.x") is None
    assert template_fields("q: {question} c: {context} again {question}") == ["question",
                                                                              "context"]


def test_values_report_missing_wrong_and_empty_fields():
    builder = SourceBuilder(source_template="{question} | {answers.text[0]}")
    assert builder.values(ROW) == {"question": "Where is Mary?", "answers.text[0]": "kitchen"}
    assert builder.values({"question": "x"}) == "field 'answers.text[0]' is missing"
    assert builder.values({"question": "x"}, name_keys=True) == (
        "field 'answers.text[0]' is missing (the row's fields: 'question'; data.source_template "
        "names the field)")
    assert builder.values({**ROW, "question": ["x"]}) == "field 'question' is list, not a string"
    assert builder.values({**ROW, "question": 3})["question"] == "3"  # a number: its text
    assert builder.values({**ROW, "question": " "}) == "field 'question' is empty"
    with pytest.raises(ConfigError, match="truncate_field='ctx'"):
        SourceBuilder(source_template="{question}", truncate_field="ctx")


def test_truncation_cuts_the_context_and_keeps_the_question():
    tokenizer = Tokenizer.train([f"question: {ROW['question']} context: {ROW['context']}"] * 20,
                                vocab_size=60)
    builder = SourceBuilder(source_template="question: {question} context: {context}",
                            truncate_field="context", max_length=40)
    ids, length = builder.encode(tokenizer, builder.values(ROW))
    text = tokenizer.decode([ids])[0]
    assert length > 40 >= len(ids)
    assert text.startswith("question: Where is Mary? context: Mary went")
    short = {**ROW, "context": "Mary went."}  # fits: encoded as it is
    ids, length = builder.encode(tokenizer, builder.values(short))
    assert length == len(ids) and tokenizer.decode([ids])[0] == builder.text(builder.values(short))
