"""A deterministic, seeded train/val/test split by document (never inside one)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from scribe.engine.errors import InputError
from scribe.engine.finetune.data import Document

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    train: list[Document]
    val: list[Document]
    test: list[Document]

    def parts(self) -> dict[str, list[Document]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def _count(n: int, fraction: float) -> int:
    return 0 if fraction <= 0 else max(1, round(n * fraction))


def split_documents(
    docs: list[Document], val_fraction: float, test_fraction: float, seed: int
) -> Split:
    """Shuffle document indices with `seed`, then take test, val and the rest for training.
    Each split keeps the documents' original order, so a book's passages stay in sequence."""
    n = len(docs)
    n_test, n_val = _count(n, test_fraction), _count(n, val_fraction)
    if n - n_test - n_val < 1:
        raise InputError(
            f"only {n} document(s): too few to hold out validation and test data; add data, or "
            "lower --val-fraction/--test-fraction (0 turns a split off)"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    test_ids = set(order[:n_test])
    val_ids = set(order[n_test : n_test + n_val])
    split = Split([], [], [])
    for i, doc in enumerate(docs):
        (split.test if i in test_ids else split.val if i in val_ids else split.train).append(doc)
    return split
