"""The ``quality`` section of the study analysis (see study.py): each reader's attention-check
score, who the study's rule excludes, the implausibly fast reads per reader and arm
(quality.py), and, when the rule leaves something out, the main ROC analysis (the OR analysis
of ``meta.auc_fom``) run again without it, so that the report shows the results with and
without the excluded readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analysis.stats.inference import to_jsonable
from analysis.stats.quality import (
    QualityResult,
    data_quality,
    excludes_anything,
    reads_without_exclusions,
)
from analysis.stats.reads import Read
from analysis.stats.study_base import Section, StudyMeta
from analysis.stats.study_mrmc import mrmc_section


@dataclass(frozen=True)
class QualitySection:
    quality: QualityResult
    # the OR analysis of meta.auc_fom without the excluded readers (and fast reads, when the
    # rules exclude them); None when the rules leave nothing out
    mrmc_auc_without_excluded: Section | None = None

    def to_dict(self) -> dict:
        without = self.mrmc_auc_without_excluded
        return {
            "quality": to_jsonable(self.quality),
            "n_fast": self.quality.n_fast,
            "mrmc_auc_without_excluded": None
            if without is None
            else {
                "result": without.result.to_dict() if without.result is not None else None,
                "reason": without.reason,
                "notes": list(without.notes),
            },
        }


def quality_section(reads: Sequence[Read], meta: StudyMeta) -> Section:
    result = data_quality(reads, meta.quality_rules)
    notes = []
    rules = meta.quality_rules
    if rules.attention_max_failures is None:
        notes.append("no attention-check exclusion rule was stated: no reader is excluded")
    if rules.fast_read_seconds is None:
        notes.append("no fast-read threshold was stated: no read is flagged")
    if not any(s.checks for s in result.readers):
        notes.append("no attention-check trial was read")
    without = None
    if excludes_anything(reads, result):
        without = mrmc_section(reads_without_exclusions(reads, result), meta, meta.auc_fom)
    return Section(result=QualitySection(result, without), notes=tuple(notes))
