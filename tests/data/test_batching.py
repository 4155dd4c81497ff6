import random

import pytest

from qa_seq2seq.data.batching import LengthBucketBatchSampler, collate, pad
from qa_seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from qa_seq2seq.errors import ConfigError


def lengths(n=1000, seed=0):
    rng = random.Random(seed)
    return [(rng.randint(5, 60), rng.randint(1, 3)) for _ in range(n)]


def test_every_row_once_per_epoch_with_little_padding():
    sizes = lengths()
    sampler = LengthBucketBatchSampler(sizes, batch_size=32, window=100)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert len(batches) == len(sampler) == 32
    questions, answers = sampler.padding_fraction()
    assert questions < 0.10
    random_batches = LengthBucketBatchSampler(sizes, batch_size=32, window=1)
    assert random_batches.padding_fraction()[0] > 3 * questions
    # By hand: two batches of lengths (2, 1), (4, 3) and (1, 2), (1, 2).
    two = LengthBucketBatchSampler([(2, 1), (4, 3), (1, 2), (1, 2)], batch_size=2, shuffle=False)
    assert two.padding_fraction() == pytest.approx((1 - 8 / 10, 1 - 8 / 10))


def test_order_is_reproducible_per_epoch_and_changes_across_epochs():
    a, b = LengthBucketBatchSampler(lengths(), 32, seed=5), LengthBucketBatchSampler(lengths(), 32, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.sampler.set_epoch(1)
    assert list(a) != first
    b.sampler.set_epoch(1)
    assert list(a) == list(b)


def test_evaluation_order_is_sorted_and_complete():
    sizes = lengths(100)
    batches = list(LengthBucketBatchSampler(sizes, 16, shuffle=False))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(100))
    assert [sizes[i] for i in flat] == sorted(sizes)


def test_token_budget_and_sharding():
    sizes = lengths()
    sampler = LengthBucketBatchSampler(sizes, batch_size=512, max_tokens=600)
    for batch in sampler:
        padded = max(sizes[i][0] for i in batch) + max(sizes[i][1] for i in batch)
        assert padded * len(batch) <= 600
    shards = [set(i for b in LengthBucketBatchSampler(sizes, 32, num_replicas=2, rank=r) for i in b)
              for r in (0, 1)]
    assert not shards[0] & shards[1] and len(shards[0] | shards[1]) == 1000
    with pytest.raises(ValueError, match="max_tokens=10"):
        LengthBucketBatchSampler(sizes, 32, max_tokens=10)


def test_token_batches_are_as_full_as_the_budget_allows():
    """Each batch takes rows in length order until the next would pass ``max_tokens`` (or
    ``batch_size``); a budget of exactly the longest row is enough."""
    sizes = lengths()
    for budget, batch_size in ((600, 512), (600, 7), (max(map(sum, sizes)), 512)):
        batches = list(LengthBucketBatchSampler(sizes, batch_size, shuffle=False,
                                                max_tokens=budget))
        assert sorted(i for b in batches for i in b) == list(range(len(sizes)))
        for batch, following in zip(batches, batches[1:]):
            grown = [*batch, following[0]]
            cost = (max(sizes[i][0] for i in grown) + max(sizes[i][1] for i in grown)) * len(grown)
            assert cost > budget or len(batch) == batch_size
            assert len(batch) <= batch_size


def test_a_skipped_start_applies_to_one_pass_only():
    sampler = LengthBucketBatchSampler(lengths(100), 10, seed=3)
    full = list(sampler)
    sampler.skip_once(4)
    assert list(sampler) == full[4:]
    assert list(sampler) == full


def test_pad():
    padded, n = pad([[5, 6, 7], [8]], 0)
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0]] and n.tolist() == [3, 1]


def test_batch_size_one_is_allowed_and_zero_is_refused_by_name():
    sampler = LengthBucketBatchSampler([(3, 2)] * 3, batch_size=1, shuffle=False)
    assert sorted(len(batch) for batch in sampler) == [1, 1, 1]
    with pytest.raises(ConfigError, match="batch_size must be >= 1, got 0"):
        LengthBucketBatchSampler([(3, 2)], batch_size=0)


def test_windows_draw_new_rows_each_epoch_and_each_seed():
    """The epoch's row order (shuffled by seed and epoch) decides which rows share a window, so
    an epoch's batches are new sets of rows, not the last epoch's batches reordered."""
    sizes = lengths(200)

    def compositions(seed, epoch):
        sampler = LengthBucketBatchSampler(sizes, 10, window=2, seed=seed)
        sampler.sampler.set_epoch(epoch)
        return {frozenset(batch) for batch in sampler}

    assert compositions(0, 0) == compositions(0, 0)
    assert compositions(0, 0) != compositions(0, 1)
    assert compositions(0, 0) != compositions(1, 0)


def test_collate_pads_both_sides_and_keeps_row_numbers():
    batch = collate([{"src_ids": [4, 5], "tgt_ids": [6], "index": 7},
                     {"src_ids": [4], "tgt_ids": [6, 8], "index": 3}])
    assert batch.src.tolist() == [[4, 5], [4, PAD_ID]] and batch.src_lengths.tolist() == [2, 1]
    assert batch.tgt_in.tolist() == [[BOS_ID, 6, PAD_ID], [BOS_ID, 6, 8]]
    assert batch.tgt_out.tolist() == [[6, EOS_ID, PAD_ID], [6, 8, EOS_ID]]
    assert batch.index.tolist() == [7, 3]


def test_an_empty_split_gives_no_batches_and_the_documented_defaults():
    sampler = LengthBucketBatchSampler([], 4, max_tokens=10)
    assert list(sampler) == [] and sampler.padding_fraction() == (0.0, 0.0)
    assert list(LengthBucketBatchSampler([], 4, shuffle=False, max_tokens=10)) == []
    assert (sampler.window, sampler.seed, sampler.shuffle) == (100, 0, True)  # data.sort_window
