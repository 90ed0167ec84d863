"""The study report's Data quality section and the methods text of the data-quality rules and
the pre-registered analysis plan (HTML fragments; see report.py).

Data quality: each reader's attention-check score, the stated exclusion rule and who it
excludes, the fast-read threshold and the fast reads per reader and arm, and the ROC analysis
(RRRC) with and without what the rule excludes. The plan: its endpoint, comparisons, alpha,
test and SHA-256, and which results are pre-specified (``analysis.stats.plan``); without a
plan, one sentence says every result is exploratory.
"""

from __future__ import annotations

from analysis.report_format import (
    ci,
    conf_words,
    fom_name,
    num,
    p_text,
    paragraph,
    reason,
    short,
    table,
)
from analysis.stats.inference import Comparison
from analysis.stats.plan import AnalysisPlan, plan_status
from analysis.stats.quality import QualityRules
from analysis.stats.study import MRMCSection, Section, StudyAnalysis, StudyMeta

TEST_WORDS = {
    "or_rrrc": "the Obuchowski–Rockette analysis with random readers and cases (RRRC)",
    "or_frrc": "the Obuchowski–Rockette analysis with fixed readers and random cases (FRRC)",
    "glmm": "a logistic mixed model (GLMM)",
}
NO_PLAN = (
    "No analysis plan was pre-registered before the study opened: every result in this report "
    "is exploratory."
)


def rule_words(rules: QualityRules) -> str:
    """The exclusion rule and the fast-read threshold, as the methods state them."""
    k = rules.attention_max_failures
    attention = (
        f"a reader who failed more than {k} of their attention checks (a check is passed when "
        "the final diagnosis equals the truth) is excluded, and the ROC analysis is reported "
        "with and without the excluded readers"
        if k is not None
        else "no attention-check exclusion rule was stated, so no reader is excluded"
    )
    t = rules.fast_read_seconds
    if t is None:
        fast = "no fast-read threshold was stated"
    else:
        fast = f"main reads shorter than {t:g} seconds are flagged as implausibly fast" + (
            " and left out of the analysis without exclusions"
            if rules.exclude_fast_reads
            else " (flagged, not excluded)"
        )
    return f"Data quality (stated before the study opened): {attention}; {fast}."


def plan_words(plan: AnalysisPlan | None) -> str:
    """The pre-registered plan and its hash, or the sentence that every result is exploratory."""
    if plan is None:
        return NO_PLAN
    pairs = ", ".join(f"arm {a} minus arm {b}" for a, b in plan.comparisons)
    endpoint = plan.primary_endpoint + (
        f" ({plan.fom.replace('_', ' ')})" if plan.primary_endpoint == "auc" else ""
    )
    sha = f" SHA-256 of the frozen plan: {plan.sha256}." if plan.sha256 else ""
    return (
        f"Pre-registered analysis plan: primary endpoint {endpoint}; comparisons {pairs}; "
        f"alpha {plan.alpha:g}; test: {TEST_WORDS.get(plan.test, plan.test)}.{sha} Differences "
        "between arms that the plan names, for its endpoint and test, are marked "
        "“pre-specified” in the tables; every other result is exploratory."
    )


def comparison_status(meta: StudyMeta, fom: str, analysis: str, c: Comparison) -> str:
    return plan_status(
        meta.analysis_plan, fom=fom, analysis=analysis, minuend=c.minuend, subtrahend=c.subtrahend
    )


def _attention_table(a: StudyAnalysis) -> str:
    q = a.quality.result.quality
    rows = [
        [
            s.reader,
            s.checks,
            s.passed,
            s.failed,
            s.unscored,
            "excluded" if s.excluded else "kept",
        ]
        for s in q.readers
    ]
    k = q.rules.attention_max_failures
    excluded = (
        f"Excluded by the rule (more than {k} failed): {', '.join(q.excluded)}."
        if q.excluded
        else "No reader is excluded."
        if k is not None
        else "No exclusion rule was stated: no reader is excluded."
    )
    return table(
        ["reader", "attention checks", "passed", "failed", "truth unknown", "rule"],
        rows,
        caption="Attention checks per reader",
        wrap=(5,),
    ) + paragraph(excluded)


def _fast_table(a: StudyAnalysis) -> str:
    q = a.quality.result.quality
    t = q.rules.fast_read_seconds
    if t is None:
        return paragraph("No fast-read threshold was stated: no read is flagged.")
    if not q.fast_reads:
        return paragraph(f"Threshold: {t:g} seconds. No main read has a reading time.")
    rows = [[f.reader, a.meta.label(f.arm), f.timed, f.fast] for f in q.fast_reads]
    return paragraph(
        f"Threshold: {t:g} seconds. {q.n_fast} of {q.n_timed} timed main reads were faster"
        + (
            " and are left out of the analysis without exclusions."
            if q.rules.exclude_fast_reads
            else " (flagged, not excluded)."
        )
    ) + table(
        ["reader", "arm", "timed reads", "fast reads"],
        rows,
        caption="Implausibly fast reads per reader and arm",
        numeric_from=2,
    )


def _rrrc_differences(s: MRMCSection) -> dict[tuple[str, str], Comparison]:
    groups = s.groups.get("rrrc")
    if groups is None:
        return {}
    comps = groups.versus_unaided + groups.between_explainers + groups.other
    return {(c.minuend, c.subtrahend): c for c in comps}


def _with_and_without(a: StudyAnalysis, without: Section) -> str:
    if not a.mrmc_auc.ok or not without.ok:
        return reason(without) + paragraph(
            "The ROC analysis with and without the excluded readers cannot be compared: "
            + (a.mrmc_auc.reason or without.reason or "one of them was not computed")
        )
    full, kept = a.mrmc_auc.result, without.result
    conf = conf_words(full.or_result.conf_level)
    fom = fom_name(full.fom)
    rows = []
    for key, c in _rrrc_differences(full).items():
        other = _rrrc_differences(kept).get(key)
        rows.append(
            [
                f"{short(a.meta, c.minuend)} − {short(a.meta, c.subtrahend)}",
                comparison_status(a.meta, full.fom, "rrrc", c),
                num(c.estimate),
                ci(c.ci_low, c.ci_high),
                p_text(c.p_value),
                num(other.estimate) if other else "—",
                ci(other.ci_low, other.ci_high) if other else "—",
                p_text(other.p_value) if other else "—",
            ]
        )
    n_all, n_kept = len(full.or_result.readers), len(kept.or_result.readers)
    return reason(without) + table(
        [
            "difference",
            "plan",
            f"all readers ({n_all})",
            f"{conf} CI",
            "p",
            f"without excluded ({n_kept})",
            f"{conf} CI",
            "p",
        ],
        rows,
        caption=f"{fom} differences (RRRC) with and without the excluded readers",
        wrap=(1,),
    )


def quality(a: StudyAnalysis) -> str:
    section = a.quality
    out = [reason(section)]
    if section.result is None:
        return "\n".join(out)
    out.append(paragraph(rule_words(section.result.quality.rules)))
    out.append(_attention_table(a))
    out.append(_fast_table(a))
    without = section.result.mrmc_auc_without_excluded
    if without is None:
        out.append(paragraph("The rules leave no reader or read out: there is one set of results."))
    else:
        out.append(_with_and_without(a, without))
    return "\n".join(out)


def summary_words(a: StudyAnalysis) -> str:
    """One summary sentence on who the attention-check rule excluded (empty when nobody)."""
    if a.quality.result is None or not a.quality.result.quality.excluded:
        return ""
    excluded = a.quality.result.quality.excluded
    return paragraph(
        f"The attention-check rule excludes {len(excluded)} reader"
        f"{'s' if len(excluded) != 1 else ''} ({', '.join(excluded)}); the ROC results "
        "without them are in the Data quality section."
    )
