"""Training batches of similar length that still never hold the same text twice.

A batch is padded to its longest text, so a random batch of passages from 40 to 190 tokens
spends about half its compute on padding (measured on the three benchmark corpora: a random
batch of 32 costs 1.95–2.05× its real tokens, a length-grouped one 1.16×). Grouping by length
removes most of it, the way Hugging Face's ``group_by_length`` does for language models: shuffle,
cut the order into groups of ``GROUP_BATCHES`` batches, sort each group by length, cut it into
batches and shuffle the batches. The groups keep batches random across the corpus; the final
shuffle keeps an epoch from running short-to-long.

MultipleNegativesRankingLoss scores every other passage in a batch as a wrong answer, so a batch
must not hold a text twice (sentence-transformers' ``NoDuplicatesBatchSampler``): a text already
in the batch is deferred to the next batch that does not hold it, as there.

Measured and not adopted (yet): steps alone ran 0.59× the time on CPU, but end to end on the
shared 2-core machine the gain was within noise and one corpus lost 0.010 NDCG@10 at 128 dims
(issue 20). It lives beside the benchmark that compares it (``step_speed.py``'s ``+groups``
variant) until a quiet machine or a GPU shows it pays; adopting it is one ``batch_sampler=``
line in ``core.training.train.training_arguments``.

Example::

    >>> import datasets
    >>> rows = datasets.Dataset.from_dict({"anchor": ["q1", "q2", "q3", "q4"],
    ...                                    "positive": ["a" * 90, "b", "c" * 85, "d"]})
    >>> sampler = LengthGroupedBatchSampler(rows, batch_size=2, drop_last=False)
    >>> sorted(sorted(batch) for batch in sampler)  # long with long, short with short
    [[0, 2], [1, 3]]
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

GROUP_BATCHES = 16  # batches sorted together: enough to find equal lengths, few enough to mix


class LengthGroupedBatchSampler(NoDuplicatesBatchSampler):
    """``NoDuplicatesBatchSampler`` whose batches hold texts of similar length.

    Passed as a class to ``SentenceTransformerTrainingArguments(batch_sampler=...)``; the trainer
    gives it the dataset, batch size and seed, and calls ``set_epoch`` so each epoch shuffles anew.
    Length is counted in characters over every text column, a cheap stand-in for tokens that
    orders them alike.
    """

    def __init__(self, dataset, batch_size: int, drop_last: bool, **kwargs) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, **kwargs)
        texts = [self.dataset[name] for name in self.dataset.column_names]
        self.lengths = [sum(len(t) for t in row if isinstance(t, str)) for row in zip(*texts)]

    def _iter_one_pass(self, get_sample_values: Callable, has_overlap: Callable) -> Iterator[list[int]]:
        shuffled = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        size = GROUP_BATCHES * self.batch_size
        order = [i for start in range(0, len(shuffled), size)
                 for i in sorted(shuffled[start:start + size], key=self.lengths.__getitem__)]
        batches = list(no_duplicate_batches(order, self.batch_size, self.drop_last,
                                            get_sample_values, has_overlap))
        for position in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[position]


def no_duplicate_batches(order: list[int], batch_size: int, drop_last: bool,
                         values: Callable, overlap: Callable) -> Iterator[list[int]]:
    """Cut ``order`` into batches in which no two rows share a text.

    A row that shares a text with the batch being filled waits, in order, for the next batch;
    each batch starts from the earliest row still waiting, so a deferred row moves only a few
    batches later (a linked list over ``order`` skips the rows already taken). Every row ends in
    one batch, as in ``NoDuplicatesBatchSampler``.

    Args:
        order: row indices in the order to batch them.
        batch_size: rows per batch; the last batch may be short unless ``drop_last``.
        drop_last: drop a last batch that is not full.
        values: a row's texts (as ``NoDuplicatesBatchSampler`` hands them over).
        overlap: whether a row's texts meet the texts already in the batch.
    """
    following = list(range(1, len(order) + 1))  # position → next waiting position
    following[-1:] = [-1]
    head = 0 if order else -1
    while head != -1:
        batch: list[int] = []
        seen: set = set()
        previous, position = -1, head
        while position != -1 and len(batch) < batch_size:
            row_values = values(order[position])
            if overlap(row_values, seen):
                previous = position
            else:
                batch.append(order[position])
                seen.update(row_values)
                if previous == -1:
                    head = following[position]
                else:
                    following[previous] = following[position]
            position = following[position]
        # Short: every row still waiting shares a text with this batch; the next batch takes them.
        if len(batch) == batch_size or not drop_last:
            yield batch
