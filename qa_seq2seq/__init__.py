"""qa_seq2seq: config-driven sequence-to-sequence question answering (README.md, docs/).

Kept import-free so that the decoding CLI starts fast: ``Answerer`` (the Python API,
``qa_seq2seq.decoding.answerer``) is imported on first use.
"""

__version__ = "0.1.0"
__all__ = ["Answerer"]


def __getattr__(name: str):
    if name == "Answerer":
        from qa_seq2seq.decoding.answerer import Answerer

        return Answerer
    raise AttributeError(f"module 'qa_seq2seq' has no attribute {name!r}")
