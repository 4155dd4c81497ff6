"""qa_seq2seq: config-driven sequence-to-sequence question answering (see README.md).

Kept import-free so that the decoding CLI starts fast.
"""

__version__ = "0.1.0"
