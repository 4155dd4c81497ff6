"""Each module of the package has its own test file in the folder of its layer
(qa_seq2seq/data/toy.py: tests/data/test_toy.py; qa_seq2seq/train.py: tests/test_train.py), or a
line here that says where it is tested instead: a new module without either fails."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTED_ELSEWHERE = {
    "data/bad_rows.py": "test_datamodule.py, test_streaming.py: bad rows refused or skipped",
    "data/factory.py": "test_streaming.py: the module a stored or current data config builds",
    "data/generated.py": "test_passages.py, test_toy.py: atomic splits, regenerated on new settings",
    "data/rows.py": "test_datamodule.py, test_hub_data.py: rows prepared, encoded and scanned",
    "decoding/answerer_base.py": "test_answerer.py, test_onnx.py: both answerers built on it",
    "decoding/hypotheses.py": "test_search.py: ranking, length penalties and the stop rule",
    "decoding/runs.py": "test_export.py, test_resume_rules.py: which checkpoint a path names",
    "decoding/search_options.py": "test_answerer.py, test_decode.py: search names and options checked",
    "decoding/search_loop.py": "test_search.py (torch) and test_onnx.py (numpy): the one search loop",
    "deployment/answerer_cache.py": "test_serve.py: a search asked for over HTTP",
    "deployment/onnx_graphs.py": "test_onnx.py: the graphs against the torch model",
    "deployment/runtime.py": "test_onnx.py: the runtime against the torch searches",
    "errors.py": "test_entry_points.py, test_warm_start.py: the user error behind a library's",
    "evaluate.py": "test_train.py, test_checkpoint.py: evaluation of trained runs",
    "model_args.py": "test_decode.py, test_serve.py: the shared arguments of decode and serve",
    "network/builder.py": "test_model.py, test_combinations.py: every option combination built",
    "network/dropout.py": "test_model.py, test_rnn.py: active in training, off in evaluation",
    "reporting.py": "test_entry_points.py: one message and exit status 2",
    "training/config_docs.py": "test_entry_points.py, test_docs.py: --help and conf/README.md",
    "training/ranges.py": "test_entry_points.py: out-of-range values refused by name",
}


def test_every_module_has_a_test_file_or_says_where_it_is_tested():
    modules = [p.relative_to(ROOT / "qa_seq2seq").as_posix()
               for p in (ROOT / "qa_seq2seq").rglob("*.py") if p.name != "__init__.py"]
    untested = [m for m in modules if m not in TESTED_ELSEWHERE
                and not (ROOT / "tests" / Path(m).parent / f"test_{Path(m).stem}.py").exists()]
    assert untested == []
    for module, where in TESTED_ELSEWHERE.items():
        assert module in modules, f"{module} is gone: drop its line"
        files = [w.strip() for w in where.split(":")[0].replace(" and ", ", ").split(",")]
        for name in files:
            name = name.split(" ")[0]
            assert list((ROOT / "tests").rglob(name)), f"{module}: {name} does not exist"



def test_test_files_sit_in_the_folder_of_the_layer_they_test():
    layers = {p.name for p in (ROOT / "qa_seq2seq").iterdir() if (p / "__init__.py").exists()}
    assert {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and "__" not in p.name} == layers
    for test in (ROOT / "tests").rglob("test_*.py"):
        folder = test.parent.relative_to(ROOT / "tests")
        homes = [p.parent.relative_to(ROOT / "qa_seq2seq")
                 for p in (ROOT / "qa_seq2seq").rglob(test.name.removeprefix("test_"))]
        assert not homes or folder in homes, f"{test.relative_to(ROOT)}: move it to tests/{homes[0]}"
