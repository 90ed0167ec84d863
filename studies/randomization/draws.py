"""Randomness that is the same everywhere (SHA-256 streams, Fisher-Yates), and the orders drawn
with it: the study case order and the Williams rows of the periods."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from studies.randomization.schedule import ALGORITHM_VERSION, LATIN_SQUARE, CaseId
from studies.randomization.values import _id_key

_U64 = 1 << 64


class _Stream:
    """Counter-based random numbers: SHA-256 of (algorithm, seed, purpose..., block counter)."""

    def __init__(self, seed: int, *purpose: str | int | None):
        self._prefix = [ALGORITHM_VERSION, seed, *purpose]
        self._counter = 0
        self._block: list[int] = []

    def next_u64(self) -> int:
        if not self._block:
            text = json.dumps([*self._prefix, self._counter], separators=(",", ":"))
            digest = hashlib.sha256(text.encode("ascii")).digest()
            self._counter += 1
            self._block = [int.from_bytes(digest[i : i + 8], "big") for i in (24, 16, 8, 0)]
        return self._block.pop()  # bytes 0-7 first, then 8-15, ...

    def below(self, n: int) -> int:
        """A whole number in [0, n), every value equally likely (rejection sampling)."""
        limit = _U64 - _U64 % n
        while True:
            value = self.next_u64()
            if value < limit:
                return value % n


def _shuffle(items: Iterable[Any], stream: _Stream) -> list[Any]:
    """Fisher-Yates: for i from the end down to 1, swap item i with item stream.below(i + 1)."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = stream.below(i + 1)
        out[i], out[j] = out[j], out[i]
    return out


def _williams_row(n_arms: int) -> list[int]:
    """First row of a Williams design: 0, 1, A-1, 2, A-2, ..."""
    row = [0]
    for j in range(1, n_arms):
        row.append((j + 1) // 2 if j % 2 else n_arms - j // 2)
    return row


def _period_offsets(design: str, n_arms: int, reader_index: int) -> list[int]:
    if design == LATIN_SQUARE:
        return [0]
    row = _williams_row(n_arms)
    if n_arms % 2 == 1 and (reader_index // n_arms) % 2 == 1:
        row.reverse()
    return row


def _study_order(
    seed: int, cases: Sequence[CaseId], strata: Mapping[CaseId, Any] | None
) -> list[tuple[CaseId, Any]]:
    """(case, stratum) in study order: strata in canonical order, each shuffled with the seed."""
    groups: dict[Any, list[CaseId]] = defaultdict(list)
    for case in cases:
        groups[None if strata is None else strata[case]].append(case)
    order: list[tuple[CaseId, Any]] = []
    for label in sorted(groups, key=lambda v: (-1, 0) if v is None else _id_key(v)):
        members = sorted(groups[label], key=_id_key)
        stream = _Stream(seed, "case-order", label)
        order.extend((case, label) for case in _shuffle(members, stream))
    return order
