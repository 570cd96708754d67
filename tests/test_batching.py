"""Length-grouped batches: less padding than random batches, never a text twice in a batch."""
import random
from collections import Counter

import datasets
import torch
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

from benchmarks.length_groups import LengthGroupedBatchSampler


def rows(n=600, seed=0):
    """Questions on passages of 10 to 400 characters; a third of the passages are asked twice."""
    rng = random.Random(seed)
    passages = [f"p{i} " + "x" * rng.randrange(10, 400) for i in range(n * 2 // 3)]
    pairs = [(f"question {i}", passages[i % len(passages)]) for i in range(n)]
    return datasets.Dataset.from_dict({"anchor": [q for q, _ in pairs],
                                       "positive": [p for _, p in pairs]})


def batches(sampler_class, data, epoch=0, batch_size=32, drop_last=False):
    sampler = sampler_class(data, batch_size=batch_size, drop_last=drop_last,
                            generator=torch.Generator(), seed=7)
    sampler.set_epoch(epoch)
    return list(sampler)


def padded(data, found):
    """Characters a model would see with each batch padded to its longest passage."""
    return sum(len(b) * max(len(data["positive"][i]) for i in b) for b in found)


def test_every_row_once_and_no_batch_holds_a_text_twice():
    data = rows()
    found = batches(LengthGroupedBatchSampler, data)
    assert Counter(i for b in found for i in b) == Counter(range(len(data)))
    for batch in found:
        texts = [data["positive"][i] for i in batch] + [data["anchor"][i] for i in batch]
        assert len(set(texts)) == len(texts)
    assert sum(len(b) == 32 for b in found) >= len(found) - 2


def test_grouped_batches_pad_far_less_than_random_ones():
    data = rows()
    grouped = padded(data, batches(LengthGroupedBatchSampler, data))
    random_ = padded(data, batches(NoDuplicatesBatchSampler, data))
    real = sum(len(p) for p in data["positive"])
    assert grouped < 0.8 * random_ and grouped < 1.3 * real


def test_each_epoch_reshuffles_and_a_seed_repeats():
    data = rows()
    first, again = batches(LengthGroupedBatchSampler, data, 0), batches(LengthGroupedBatchSampler, data, 0)
    assert first == again and first != batches(LengthGroupedBatchSampler, data, 1)
    # The batch order is shuffled: an epoch does not run from short to long passages.
    longest = [max(len(data["positive"][i]) for i in b) for b in first]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_drop_last_keeps_only_full_batches():
    found = batches(LengthGroupedBatchSampler, rows(100), drop_last=True)
    assert found and all(len(b) == 32 for b in found)
