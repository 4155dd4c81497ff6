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


class ReferencePassageQA(nn.Module):
    """``passage_qa``'s architecture as a user writes it with plain torch: a packed
    bidirectional nn.LSTM encoder, linear maps of its final (h, c) into an nn.LSTM decoder, Luong's
    ``general`` attention after the decoder and copy attention (See et al. 2017) mixing the output
    layer's distribution with the attention over the source tokens. Returns log-probabilities."""

    def __init__(self, vocab_size: int, embedding_size: int = 64, hidden_size: int = 64):
        super().__init__()
        self.src_emb = nn.Embedding(vocab_size, embedding_size)
        self.tgt_emb = nn.Embedding(vocab_size, embedding_size)
        self.encoder = nn.LSTM(embedding_size, hidden_size, batch_first=True, bidirectional=True)
        self.bridge_h = nn.Linear(2 * hidden_size, hidden_size)
        self.bridge_c = nn.Linear(2 * hidden_size, hidden_size)
        self.decoder = nn.LSTM(embedding_size, hidden_size, batch_first=True)
        self.key = nn.Linear(2 * hidden_size, hidden_size, bias=False)
        self.combine = nn.Linear(3 * hidden_size, hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, vocab_size)
        self.switch = nn.Linear(hidden_size + embedding_size, 1)

    def forward(self, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: tgt_in (B, T) -> log-probabilities (B, T, V)."""
        packed = nn.utils.rnn.pack_padded_sequence(self.src_emb(src), lengths, batch_first=True,
                                                   enforce_sorted=False)
        memory, (h, c) = self.encoder(packed)
        memory = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True,
                                                  total_length=src.size(1))[0]  # (B, S, 2H)
        state = (self.bridge_h(torch.cat([h[0], h[1]], -1))[None],
                 self.bridge_c(torch.cat([c[0], c[1]], -1))[None])
        inputs = self.tgt_emb(tgt_in)
        query = self.decoder(inputs, state)[0]  # (B, T, H)
        scores = query @ self.key(memory).transpose(1, 2)  # (B, T, S)
        scores = scores.masked_fill(src[:, None] == 0, float("-inf"))
        weights = scores.softmax(-1)
        hidden = torch.tanh(self.combine(torch.cat([weights @ memory, query], -1)))
        generate = torch.sigmoid(self.switch(torch.cat([hidden, inputs], -1)))  # (B, T, 1)
        copied = torch.zeros_like(scores[..., :1]).expand(-1, -1, self.out.out_features)
        copied = copied.scatter_add(-1, src[:, None].expand_as(weights), weights)
        mixture = generate * self.out(hidden).softmax(-1) + (1 - generate) * copied
        return mixture.clamp_min(1e-30).log()
