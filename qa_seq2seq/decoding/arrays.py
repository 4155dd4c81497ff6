"""The few array operations the searches need, for torch tensors and numpy arrays alike, so that
greedy and beam search are written once (qa_seq2seq.decoding.search_loop) and run on the torch
model and on the torch-free ONNX runtime. Everything else the searches do (indexing, ``==``,
``&``, ``//``, ``reshape``, ``tolist``) both libraries spell the same way.

Ties are broken one way in both: :meth:`Arrays.top` ranks equal values by position, first
first (a stable sort), as ``argmax`` does.

Imports no torch: :data:`NUMPY` is here, the torch implementation beside the torch searches.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

Array = Any  # a torch.Tensor or a numpy.ndarray, by implementation


class Arrays(Protocol):
    """The array operations the search loops use (see the module docstring)."""
    def full(self, shape: tuple[int, ...], value: float | int | bool, like: Array) -> Array:
        """A new array on ``like``'s device: int64 for an int ``value``, float32 for a float,
        bool for a bool."""

    def of(self, values: list, like: Array) -> Array:
        """An int64 array of ``values`` on ``like``'s device."""

    def arange(self, n: int, like: Array) -> Array:
        """0 .. n-1, int64, on ``like``'s device."""

    def log_softmax(self, logits: Array) -> Array:
        """float32 log-probabilities over the last axis (R, V)."""

    def top(self, x: Array, k: int) -> tuple[Array, Array]:
        """The ``k`` largest of each row of ``x`` (R, N) and their columns, largest first; equal
        values by column, first first."""

    def gather(self, x: Array, columns: Array) -> Array:
        """``x[r, columns[r, j]]`` (R, J)."""

    def scatter_true(self, like: Array, columns: Array) -> Array:
        """A bool array shaped as ``like`` (R, N), True at ``columns`` (R, J) of each row."""

    def cat(self, arrays: list[Array]) -> Array:
        """Side by side along axis 1."""

    def repeat_rows(self, x: Array, k: int) -> Array:
        """Each row ``k`` times in a row: (R, ...) -> (R * k, ...)."""

    def where(self, mask: Array) -> Array:
        """The positions of True in a 1-D mask, int64."""

    def isfinite(self, x: Array) -> Array:
        """Elementwise, bool."""


class NumpyArrays:
    """:class:`Arrays` on numpy (the ONNX runtime)."""

    def full(self, shape, value, like):
        dtype = bool if isinstance(value, bool) else np.int64 if isinstance(value, int) else np.float32
        return np.full(shape, value, dtype)

    def of(self, values, like):
        return np.array(values, np.int64)

    def arange(self, n, like):
        return np.arange(n, dtype=np.int64)

    def log_softmax(self, logits):
        shifted = logits.astype(np.float32) - logits.max(-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))

    def top(self, x, k):
        if k == 1:
            columns = x.argmax(1)[:, None]  # the first of equal maxima
            return np.take_along_axis(x, columns, 1), columns
        if k < x.shape[1]:
            # As the torch one: a partition (a full stable sort of each row costs far more) that
            # took the right values unless the (k+1)-th equals the k-th; then the first of them.
            part = np.argpartition(-x, k, axis=1)
            columns = part[:, :k]
            kth = np.take_along_axis(x, columns, 1).min(1, keepdims=True)
            if (kth == np.take_along_axis(x, part[:, k:k + 1], 1)).any():
                above, equal = x > kth, x == kth
                chosen = above | (equal & (equal.cumsum(1) <= k - above.sum(1, keepdims=True)))
                columns = np.nonzero(chosen)[1].reshape(-1, k)
        else:
            columns = np.broadcast_to(np.arange(x.shape[1]), x.shape)
        columns = np.sort(columns, 1)
        order = np.argsort(-np.take_along_axis(x, columns, 1), axis=1, kind="stable")
        columns = np.take_along_axis(columns, order, 1)
        return np.take_along_axis(x, columns, 1), columns

    def gather(self, x, columns):
        return np.take_along_axis(x, columns, 1)

    def scatter_true(self, like, columns):
        out = np.zeros(like.shape, bool)
        np.put_along_axis(out, columns, True, 1)
        return out

    def cat(self, arrays):
        return np.concatenate(arrays, 1)

    def repeat_rows(self, x, k):
        return np.repeat(x, k, axis=0)

    def where(self, mask):
        return np.flatnonzero(mask)

    def isfinite(self, x):
        return np.isfinite(x)


NUMPY = NumpyArrays()
