"""Sentencepiece subwords: trained once on the training split, then saved with the run.

The special ids are fixed so that every part of the framework can rely on them:
``PAD_ID = 0``, ``UNK_ID = 1``, ``BOS_ID = 2``, ``EOS_ID = 3``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from qa_seq2seq.errors import ConfigError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


class Tokenizer:
    """A sentencepiece model held as its serialized bytes (so it pickles, hashes and checkpoints)."""

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, model_proto: bytes):
        self.model_proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ConfigError(
                f"sentencepiece model has special ids pad/unk/bos/eos={ids}; qa_seq2seq needs "
                f"{(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}: train it with Tokenizer.train"
            )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 256,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        split_digits: bool = True,
        byte_fallback: bool = False,
        user_defined_symbols: Iterable[str] = (),
        seed: int = 0,
    ) -> Tokenizer:
        """Train on ``texts`` (questions and answers of the training split).

        ``model_type`` is ``unigram``, ``bpe``, ``char`` or ``word``. ``vocab_size`` is an upper
        bound: a small corpus yields a smaller vocabulary instead of an error.
        ``split_digits`` makes every digit its own piece (``-29484`` -> ``▁- 2 9 4 8 4``), so a
        digit's position in a number is visible to the model; without it, pieces cut numbers at
        arbitrary places. ``byte_fallback`` spells characters unseen in training as UTF-8 byte
        pieces instead of ``<unk>`` (it adds 256 pieces, so ``vocab_size`` must leave room).
        ``user_defined_symbols`` are kept whole as one piece each wherever they occur (a
        separator such as ``<sep>`` in a source template).
        """
        if byte_fallback and vocab_size < 256 + 4 + 1:
            raise ConfigError(f"data.tokenizer.byte_fallback=true adds 256 byte pieces: "
                              f"data.tokenizer.vocab_size={vocab_size} leaves no room; use >= 512")
        spm.set_random_generator_seed(seed)
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            split_digits=split_digits,
            byte_fallback=byte_fallback,
            user_defined_symbols=list(user_defined_symbols),
            hard_vocab_limit=False,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            num_threads=1,  # deterministic, and the corpus is small
            minloglevel=2,
        )
        return cls(model.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        return cls(Path(path).read_bytes())

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.model_proto)
        return path

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self._sp.encode(texts)

    def encode_sampled(self, texts: list[str], alpha: float) -> list[list[int]]:
        """Ids of one sampled segmentation each instead of the best: BPE-dropout (each merge
        skipped with probability ``alpha``) for ``bpe`` models, sampling from the lattice with
        smoothing ``alpha`` for ``unigram``. Seeded by ``spm.set_random_generator_seed``."""
        return self._sp.encode(texts, enable_sampling=True, alpha=alpha, nbest_size=-1,
                               num_threads=1)  # one generator: the seed decides the draws

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Ids to text; special ids (pad, bos, eos) decode to nothing."""
        return self._sp.decode(ids)

    def pieces(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def id_to_piece(self, ids: list[int]) -> list[str]:
        return [self._sp.id_to_piece(i) for i in ids]

    def __getstate__(self) -> dict:
        return {"model_proto": self.model_proto}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_proto"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and other.model_proto == self.model_proto

    def __hash__(self) -> int:
        return hash(self.model_proto)
