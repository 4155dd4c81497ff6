"""Data: rows read from files or generated, the sentencepiece tokenizer, and the Lightning
datamodule that batches them. Imports nothing else of the package but ``errors``."""
