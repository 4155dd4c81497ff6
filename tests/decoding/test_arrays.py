"""The array operations the searches are written over (decoding/arrays.py) give the same results
on torch and numpy, ties included: the torch searches and the ONNX runtime rank alike."""

import numpy as np
import pytest
import torch

from qa_seq2seq.decoding.arrays import NUMPY
from qa_seq2seq.decoding.search import TORCH


@pytest.mark.parametrize("k", [1, 2, 5, 11, 12])
def test_top_ranks_equal_values_by_position_in_both(k):
    x = torch.randint(0, 4, (7, 12)).float()  # many ties
    x[0, :] = -float("inf")
    (tv, ti), (nv, ni) = TORCH.top(x, k), NUMPY.top(x.numpy(), k)
    assert ti.tolist() == ni.tolist() and tv.tolist() == nv.tolist()
    for row, columns in zip(x.tolist(), ni.tolist()):  # largest first, equals first to last
        assert columns == sorted(range(12), key=lambda c: (-row[c], c))[:k]


def test_the_other_operations_agree():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 9)).astype(np.float32)
    columns = rng.integers(0, 9, size=(4, 3))
    t, n = torch.from_numpy(logits), logits
    tc, nc = torch.from_numpy(columns), columns
    np.testing.assert_allclose(TORCH.log_softmax(t).numpy(), NUMPY.log_softmax(n), atol=1e-6)
    assert TORCH.gather(t, tc).tolist() == NUMPY.gather(n, nc).tolist()
    assert TORCH.scatter_true(t, tc).tolist() == NUMPY.scatter_true(n, nc).tolist()
    assert TORCH.repeat_rows(t, 3).tolist() == NUMPY.repeat_rows(n, 3).tolist()
    assert TORCH.cat([tc, tc]).tolist() == NUMPY.cat([nc, nc]).tolist()
    mask = [True, False, True, True]
    assert TORCH.where(torch.tensor(mask)).tolist() == NUMPY.where(np.array(mask)).tolist()
    for value in (3, 0.5, False):
        a, b = TORCH.full((2, 3), value, t), NUMPY.full((2, 3), value, n)
        assert a.tolist() == b.tolist() and str(a.dtype).split(".")[-1] == str(b.dtype)
    assert TORCH.of([1, 2], t).tolist() == NUMPY.of([1, 2], n).tolist() == [1, 2]
    assert TORCH.arange(3, t).tolist() == NUMPY.arange(3, n).tolist()
