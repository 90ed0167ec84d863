"""The MRMC tables of the study report (HTML fragments; see report.py): each arm's figure of
merit with its interval inside [0, 1] (the logit-scale interval of
``MRMCSection.arm_intervals``), the global tests, and the differences between arms by
comparison group, each OR difference interval as the reference software computes it (clipped to
[-1, 1] for display only, and then said so), each marked pre-specified or exploratory by the
frozen analysis plan (report_quality.py).
"""

from __future__ import annotations

from analysis.report_format import (
    and_list,
    ci,
    conf_words,
    cov_words,
    df_text,
    fom_name,
    num,
    p_text,
    paragraph,
    reason,
    table,
)
from analysis.report_quality import comparison_status
from analysis.stats.intervals import CLIPPED, ZERO_WIDTH, clipped_interval
from analysis.stats.study import MRMCSection, Section, StudyAnalysis, StudyMeta

ANALYSIS_NAMES = {"rrrc": "RRRC", "frrc": "FRRC", "rrfc": "RRFC"}
GROUP_TITLES = {
    "versus_unaided": "versus unaided (primary)",
    "between_explainers": "between explainer arms",
    "other": "other pairs",
}


def _arm_table(meta: StudyMeta, s: MRMCSection, fom: str, conf: str) -> str:
    rrrc = s.or_result.analyses.get("rrrc")
    if rrrc is None:
        return ""
    bounded = s.arm_intervals.get("rrrc", {})
    rows, crossing, zero, clipped = [], [], [], []
    for e in rrrc.arms:
        b = bounded.get(e.treatment)
        low, high = (b.ci_low, b.ci_high) if b is not None else (e.ci_low, e.ci_high)
        rows.append(
            [meta.label(e.treatment), num(e.estimate), num(e.se, 4), df_text(e.df), ci(low, high)]
        )
        if b is not None and b.method == ZERO_WIDTH:
            zero.append(meta.label(e.treatment))
        elif b is not None and b.method == CLIPPED:
            clipped.append(meta.label(e.treatment))
        elif b is not None and b.wald_outside:
            crossing.append(f"{meta.label(e.treatment)} {ci(b.wald_low, b.wald_high)}")
    note = (
        "Intervals on the logit scale (delta-method SE, Hillis df), transformed back, so "
        "they lie within 0–1."
    )
    if crossing:
        note += (
            " The untransformed interval, as MRMCaov and RJafroc print it, leaves 0–1 for "
            + "; ".join(crossing)
            + " (both are in the JSON export)."
        )
    if zero:
        note += (
            f" SE 0 (every reader at the same {fom}): zero-width interval for "
            + and_list(zero)
            + "."
        )
    if clipped:
        note += (
            f" {fom} at the bound with SE > 0: the interval is clipped to 0–1 for "
            + and_list(clipped)
            + "."
        )
    return table(
        ["arm", fom, "SE", "df", f"{conf} CI"],
        rows,
        note=note,
        caption=f"{fom} per arm (reader average; RRRC)",
    )


def _global_tests(s: MRMCSection) -> str:
    tests = []
    for key, analysis in s.or_result.analyses.items():
        g = analysis.global_test
        if g is None:
            continue
        df = df_text(g.df1) if g.statistic_name == "X2" else f"{df_text(g.df1)}, {df_text(g.df2)}"
        tests.append(
            [
                f"{ANALYSIS_NAMES[key]} ({analysis.title})",
                f"{g.statistic_name}({df}) = {num(g.statistic, 2)}",
                p_text(g.p_value),
                "yes" if g.clamped else "no",
            ]
        )
    if not tests:
        return ""
    return table(
        ["analysis", "statistic", "p", "Cov2 − Cov3 clamped"], tests, caption="Test of equal arms"
    )


def _difference_tables(meta: StudyMeta, s: MRMCSection, conf: str) -> str:
    out = []
    for key, groups in s.groups.items():
        rows, group_rows, clipped = [], {}, []
        for group_name, title in GROUP_TITLES.items():
            comps = getattr(groups, group_name)
            if comps:
                group_rows[len(rows)] = title
            for c in comps:
                name = f"{meta.label(c.minuend)} − {meta.label(c.subtrahend)}"
                low, high, was_clipped = clipped_interval(c.ci_low, c.ci_high, -1.0, 1.0)
                if was_clipped:
                    clipped.append(name)
                rows.append(
                    [
                        name,
                        comparison_status(meta, s.fom, key, c),
                        num(c.estimate),
                        num(c.se, 4),
                        df_text(c.df),
                        ci(low, high),
                        p_text(c.p_value),
                        p_text(c.p_holm),
                    ]
                )
        if not rows:
            continue
        note = (
            "Interval clipped to −1 to 1 (the range of a difference) for: "
            + "; ".join(clipped)
            + "."
            if clipped
            else ""
        )
        out.append(
            table(
                ["difference", "plan", "estimate", "SE", "df", f"{conf} CI", "p", "Holm p"],
                rows,
                group_rows=group_rows,
                wrap=(1,),
                note=note,
                caption=f"Differences between arms, {ANALYSIS_NAMES[key]} "
                f"({s.or_result.analyses[key].title})",
            )
        )
    return "\n".join(out)


def _choices(a: StudyAnalysis, name: str, section: Section) -> str:
    """The figure of merit, the covariance method and (once computed) the design as MRMCaov
    names it; the ROC analysis's are the ones chosen when the report was requested."""
    if section.ok:
        res = section.result.or_result
        fom, cov = section.result.fom, res.cov_method
        design = f" Design, as MRMCaov calls it: {res.mrmcaov_design or res.design}."
    elif name == "mrmc_auc":
        fom, cov, design = a.meta.auc_fom, a.meta.cov_method, ""
    else:
        return ""
    return paragraph(
        f"Figure of merit: {fom_name(fom)}. Covariance: {cov_words(cov, a.meta)}.{design}"
    )


def mrmc(a: StudyAnalysis, name: str, figures: str) -> str:
    section: Section = getattr(a, name)
    out = [reason(section)]
    if not section.ok:
        out.append(_choices(a, name, section))
        out.append(figures)
        return "\n".join(out)
    s: MRMCSection = section.result
    res = s.or_result
    conf = conf_words(res.conf_level)
    fom = fom_name(s.fom)
    out.append(
        paragraph(
            f"{len(res.readers)} readers, {res.n_cases} cases ({res.n_diseased} positive, "
            f"{res.n_nondiseased} negative)."
            + (f" Readers left out: {', '.join(s.readers_left_out)}." if s.readers_left_out else "")
        )
    )
    out.append(_choices(a, name, section))
    out.append(_arm_table(a.meta, s, fom, conf))
    out.append(_global_tests(s))
    out.append(_difference_tables(a.meta, s, conf))
    vc = res.components
    out.append(
        table(
            ["component", "estimate", "correlation"],
            [
                ["Var(R)", num(vc.var_r, 5), ""],
                ["Var(T×R)", num(vc.var_tr, 5), ""],
                ["Cov1 (same reader, different arms)", num(vc.cov1, 5), num(vc.corr1)],
                ["Cov2 (different readers, same arm)", num(vc.cov2, 5), num(vc.corr2)],
                ["Cov3 (different readers and arms)", num(vc.cov3, 5), num(vc.corr3)],
                ["Var(error)", num(vc.var_error, 5), ""],
            ],
            caption=f"OR variance components ({res.cov_method} covariance)",
        )
    )
    out.append(figures)
    return "\n".join(out)
