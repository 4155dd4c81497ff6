"""The decoding CLI's own parsing (its end-to-end runs are in test_train.py and test_answerer.py)."""

import pytest

from qa_seq2seq.decode import option_value, parse_args


def test_option_values_are_read_as_hydra_reads_overrides():
    assert [option_value(v) for v in ("5", "0.6", "1e-3", "gnmt", "null", "none", "true", "False")] \
        == [5, 0.6, 0.001, "gnmt", None, None, True, False]


def test_search_options_mix_with_flags_in_any_order():
    args = parse_args(["beam_size=4", "--decode", "beam", "--format", "jsonl", "n_best=2"])
    assert args.decode == "beam" and args.options == {"beam_size": 4, "n_best": 2}
    with pytest.raises(SystemExit):
        parse_args(["beam size=4"])
