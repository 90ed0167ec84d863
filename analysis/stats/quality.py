"""Attention checks and implausibly fast reads: each reader's score, who the stated rule
excludes, and the fast reads per reader and arm. No Django.

An attention-check trial is *passed* when the reader's final diagnosis equals the case's truth,
*failed* when it differs or the reader gave no diagnosis, and *unscored* when the truth is not
known. The rule (``QualityRules``, stated in the protocol before the study opens) excludes a
reader who fails more than ``attention_max_failures`` of their attention checks; a main read
shorter than ``fast_read_seconds`` is flagged as implausibly fast, and left out of the
analysis without the excluded readers only when ``exclude_fast_reads`` is set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from analysis.stats.data import label_key
from analysis.stats.reads import Read, main_reads


@dataclass(frozen=True)
class QualityRules:
    attention_max_failures: int | None = None  # exclude a reader failing more than this many
    fast_read_seconds: float | None = None  # main reads shorter than this are flagged
    exclude_fast_reads: bool = False  # ... and left out of the analysis without exclusions

    def __post_init__(self) -> None:
        if self.attention_max_failures is not None and self.attention_max_failures < 0:
            raise ValueError("attention_max_failures must not be negative")
        if self.fast_read_seconds is not None and not self.fast_read_seconds > 0:
            raise ValueError("fast_read_seconds must be positive")

    @classmethod
    def from_dict(cls, rules: Mapping | None) -> QualityRules:
        rules = rules or {}
        k = rules.get("attention_max_failures")
        t = rules.get("fast_read_seconds")
        return cls(
            attention_max_failures=None if k is None else int(k),
            fast_read_seconds=None if t is None else float(t),
            exclude_fast_reads=bool(rules.get("exclude_fast_reads", False)),
        )


@dataclass(frozen=True)
class ReaderAttention:
    reader: str
    checks: int  # attention-check trials read
    passed: int
    failed: int
    unscored: int  # truth unknown
    excluded: bool  # by the rule


@dataclass(frozen=True)
class FastReads:
    reader: str
    arm: str
    timed: int  # main reads with a reading time
    fast: int  # of them, shorter than the threshold


@dataclass(frozen=True)
class QualityResult:
    rules: QualityRules
    readers: tuple[ReaderAttention, ...]
    excluded: tuple[str, ...]  # readers the attention rule excludes
    fast_reads: tuple[FastReads, ...]  # per reader and arm; empty without a threshold

    @property
    def n_fast(self) -> int:
        return sum(f.fast for f in self.fast_reads)

    @property
    def n_timed(self) -> int:
        return sum(f.timed for f in self.fast_reads)


def attention_result(read: Read) -> bool | None:
    """True: passed; False: failed (wrong or no diagnosis); None: truth unknown."""
    if read.truth is None:
        return None
    return read.final_positive is not None and bool(read.final_positive) == bool(read.truth)


def attention_scores(
    reads: Sequence[Read], max_failures: int | None
) -> tuple[ReaderAttention, ...]:
    """Every reader with any read, in label order, with their attention-check score."""
    readers = sorted({r.reader for r in reads}, key=label_key)
    out = []
    for reader in readers:
        results = [
            attention_result(r) for r in reads if r.reader == reader and r.kind == "attention"
        ]
        failed = sum(v is False for v in results)
        out.append(
            ReaderAttention(
                reader=reader,
                checks=len(results),
                passed=sum(v is True for v in results),
                failed=failed,
                unscored=sum(v is None for v in results),
                excluded=max_failures is not None and failed > max_failures,
            )
        )
    return tuple(out)


def is_fast(read: Read, threshold: float | None) -> bool:
    seconds = read.seconds
    return (
        threshold is not None
        and seconds is not None
        and math.isfinite(seconds)
        and seconds < threshold
    )


def fast_reads(reads: Sequence[Read], threshold: float | None) -> tuple[FastReads, ...]:
    """Per reader and arm (label order), the main reads with a time and how many were fast."""
    if threshold is None:
        return ()
    tally: dict[tuple[str, str], list[int]] = {}
    for r in main_reads(reads):
        if r.seconds is None or not math.isfinite(r.seconds):
            continue
        cell = tally.setdefault((r.reader, r.arm), [0, 0])
        cell[0] += 1
        cell[1] += is_fast(r, threshold)
    keys = sorted(tally, key=lambda k: (label_key(k[0]), label_key(k[1])))
    return tuple(FastReads(reader, arm, *tally[(reader, arm)]) for reader, arm in keys)


def data_quality(reads: Sequence[Read], rules: QualityRules) -> QualityResult:
    scores = attention_scores(reads, rules.attention_max_failures)
    return QualityResult(
        rules=rules,
        readers=scores,
        excluded=tuple(s.reader for s in scores if s.excluded),
        fast_reads=fast_reads(reads, rules.fast_read_seconds),
    )


def reads_without_exclusions(reads: Sequence[Read], result: QualityResult) -> list[Read]:
    """The reads minus the excluded readers' (and the fast main reads, when the rules say so)."""
    excluded = set(result.excluded)
    drop_fast = result.rules.exclude_fast_reads
    return [
        r
        for r in reads
        if r.reader not in excluded
        and not (drop_fast and r.kind == "main" and is_fast(r, result.rules.fast_read_seconds))
    ]


def excludes_anything(reads: Sequence[Read], result: QualityResult) -> bool:
    return len(reads_without_exclusions(reads, result)) < len(reads)
