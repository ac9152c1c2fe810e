"""The language model's baseline: an interpolated Kneser-Ney n-gram model over token ids.

Pure Python, no TensorFlow. A neural language model's perplexity means little alone; the
classic smoothed n-gram fitted on the same training tokens and scored on the same held-out
tokens says what the network adds. Kneser-Ney (Kneser & Ney, 1995; the interpolated form
of Chen & Goodman, 1998) is the strongest of the classic smoothings: each order subtracts
a discount D from every seen count and hands the freed mass to the next lower order,
whose counts are *continuation* counts (in how many contexts a token was seen), down to
a uniform distribution over the vocabulary, so every token of the vocabulary keeps a
non-zero probability and each conditional distribution sums to one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


class KneserNeyLM:
    """Interpolated Kneser-Ney n-gram model over integer token ids in [0, vocabulary_size).

    Args:
        order: n, the n-gram length (the history is n - 1 tokens).
        vocabulary_size: Size of the vocabulary the uniform base distribution covers.
        discount: A fixed discount for every order; default Ney's estimate
            n1 / (n1 + 2 n2) per order (n1, n2: how many n-grams were seen once, twice).
    """

    def __init__(self, order: int, vocabulary_size: int, discount: float | None = None):
        if order < 1 or vocabulary_size < 1:
            raise ValueError("order and vocabulary_size must be positive")
        self.order = order
        self.vocabulary_size = vocabulary_size
        self.fixed_discount = discount
        # Per order k (1..n): k-gram counts, and per (k-1)-token history the counts'
        # total and how many distinct tokens followed it.
        self.counts: list[dict[tuple[int, ...], int]] = []
        self.totals: list[dict[tuple[int, ...], int]] = []
        self.types: list[dict[tuple[int, ...], int]] = []
        self.discounts: list[float] = []

    def fit(self, ids: Sequence[int]) -> KneserNeyLM:
        """Count the training tokens: raw counts at order n, continuation counts below."""
        ids = list(ids)
        raw = [
            Counter(zip(*(ids[i:] for i in range(k)), strict=False))
            for k in range(1, 1 + self.order)
        ]
        self.counts, self.totals, self.types, self.discounts = [], [], [], []
        for k in range(1, self.order + 1):
            if k == self.order:
                counts = dict(raw[k - 1])
            else:  # N1+(. g): the distinct tokens seen before the k-gram g
                counts = dict(Counter(gram[1:] for gram in raw[k]))
            totals: Counter[tuple[int, ...]] = Counter()
            types: Counter[tuple[int, ...]] = Counter()
            for gram, count in counts.items():
                totals[gram[:-1]] += count
                types[gram[:-1]] += 1
            self.counts.append(counts)
            self.totals.append(dict(totals))
            self.types.append(dict(types))
            self.discounts.append(self._discount(counts))
        return self

    def _discount(self, counts: dict[tuple[int, ...], int]) -> float:
        if self.fixed_discount is not None:
            return self.fixed_discount
        seen = Counter(counts.values())
        n1, n2 = seen.get(1, 0), seen.get(2, 0)
        return n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5

    def probability(self, token: int, history: Sequence[int]) -> float:
        """P(token | the last n-1 tokens of history), built up from the uniform base."""
        history = tuple(history)[-(self.order - 1) :] if self.order > 1 else ()
        p = 1.0 / self.vocabulary_size
        for k in range(1, len(history) + 2):
            context = history[len(history) - (k - 1) :]
            total = self.totals[k - 1].get(context)
            if not total:  # an unseen history: every longer one is unseen too
                break
            discount = self.discounts[k - 1]
            count = self.counts[k - 1].get((*context, token), 0)
            p = (max(count - discount, 0.0) + discount * self.types[k - 1][context] * p) / total
        return p

    def log_likelihoods(self, ids: Sequence[int]) -> list[float]:
        """log P(ids[i] | the up to n-1 tokens before it) for i = 1 .. len(ids) - 1: every
        token but the first, each from the history inside `ids` only."""
        ids = list(ids)
        span = self.order - 1
        return [
            math.log(self.probability(ids[i], ids[max(0, i - span) : i]))
            for i in range(1, len(ids))
        ]

    def perplexity(self, ids: Sequence[int]) -> float:
        """exp of the mean negative log-likelihood per token (`log_likelihoods`' tokens)."""
        scores = self.log_likelihoods(ids)
        if not scores:
            raise ValueError("perplexity needs at least two tokens")
        return math.exp(-sum(scores) / len(scores))
