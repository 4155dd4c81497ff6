"""The hand-written model the benchmarks compare against: what a user writes with plain torch.

nn.Embedding + packed nn.LSTM encoder; its final (h, c) starts an nn.LSTM decoder, teacher-forced
in training; greedy decoding one nn.LSTM step at a time. Ids: 0 pad, 2 <bos>, 3 <eos>.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ReferenceSeq2Seq(nn.Module):
    def __init__(self, vocab_size: int, embedding_size: int = 64, hidden_size: int = 256,
                 num_layers: int = 2):
        super().__init__()
        self.src_emb = nn.Embedding(vocab_size, embedding_size)
        self.tgt_emb = nn.Embedding(vocab_size, embedding_size)
        self.encoder = nn.LSTM(embedding_size, hidden_size, num_layers, batch_first=True)
        self.decoder = nn.LSTM(embedding_size, hidden_size, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """src (B, S), lengths (B,) -> the encoder's final (h, c), each (L, B, H)."""
        packed = nn.utils.rnn.pack_padded_sequence(self.src_emb(src), lengths, batch_first=True,
                                                   enforce_sorted=False)
        return self.encoder(packed)[1]

    def forward(self, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: tgt_in (B, T) -> logits (B, T, V)."""
        return self.out(self.decoder(self.tgt_emb(tgt_in), self.encode(src, lengths))[0])

    @torch.no_grad()
    def greedy(self, src: Tensor, lengths: Tensor, max_length: int) -> list[list[int]]:
        """The argmax answer of each question, without <eos>."""
        state, token, steps = self.encode(src, lengths), torch.full((src.size(0),), 2), []
        for _ in range(max_length):
            output, state = self.decoder(self.tgt_emb(token)[:, None], state)
            token = self.out(output[:, 0]).argmax(-1)
            steps.append(token)
        return [ids[: ids.index(3)] if 3 in ids else ids
                for ids in torch.stack(steps, 1).tolist()]
