"""Plain-text tables of an OR analysis, for the terminal.

Reader and treatment ids are shown through ``display_ids``: whole numbers stored as ``1.0`` print
as ``1`` (the JSON keeps the ids as read).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from analysis.stats.inference import Analysis, Comparison, display_ids
from analysis.stats.mrmc import ORResult

FOM_NAMES = {
    "auc": "AUC (empirical, Wilcoxon/Mann-Whitney)",
    "trapezoidal_auc": "AUC (trapezoidal = empirical, Wilcoxon/Mann-Whitney)",
    "binormal_auc": "AUC (binormal, maximum-likelihood fit per reader and treatment)",
    "partial_auc": "partial AUC (empirical)",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "accuracy": "accuracy",
}


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Left-aligned first column, right-aligned others, widths from content."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return indent + "  ".join(parts).rstrip()

    rule = indent + "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def num(value: float | None, digits: int = 8) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def pval(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "<0.0001" if p < 0.0001 else f"{p:.4f}"


def df_text(df: float) -> str:
    if math.isinf(df):
        return "inf"
    return str(int(df)) if float(df).is_integer() else f"{df:.2f}"


def _ci(lo: float, hi: float, digits: int) -> str:
    return f"({num(lo, digits)}, {num(hi, digits)})"


def _comparison_label(c: Comparison, treatments: Mapping[str, str]) -> str:
    if c.minuend in treatments and c.subtrahend in treatments:
        return f"treatment {treatments[c.minuend]} - treatment {treatments[c.subtrahend]}"
    return c.label


def _comparison_rows(
    comps: Sequence[Comparison],
    conf: str,
    ids: tuple[Mapping[str, str], Mapping[str, str]],
    with_reader: bool = False,
):
    stat = comps[0].statistic_name if comps else "t"
    header = (
        (["reader"] if with_reader else [])
        + ["comparison", "estimate", "std err", "df", stat, "p"]
        + ([] if with_reader else ["Holm p"])
        + [f"{conf} CI"]
    )
    treatments, readers = ids
    rows = []
    for c in comps:
        row = ([readers.get(c.reader, c.reader) or ""] if with_reader else []) + [
            _comparison_label(c, treatments),
            num(c.estimate, 5),
            num(c.se, 5),
            df_text(c.df),
            num(c.statistic, 2),
            pval(c.p_value),
        ]
        if not with_reader:
            row.append(pval(c.p_holm))
        row.append(_ci(c.ci_low, c.ci_high, 5))
        rows.append(row)
    return header, rows


def render_analysis(
    a: Analysis,
    conf_level: float,
    treatments: Mapping[str, str] | None = None,
    readers: Mapping[str, str] | None = None,
) -> str:
    """One analysis; ``treatments``/``readers`` map ids to their printed form (default: as is)."""
    conf = f"{conf_level * 100:g}%"
    ids = (treatments or {}, readers or {})
    out = [f"Analysis {a.name.upper()}: {a.title}"]
    g = a.global_test
    if g is not None:
        df = (
            f"{df_text(g.df1)}"
            if g.statistic_name == "X2"
            else f"{df_text(g.df1)}, {df_text(g.df2)}"
        )
        out.append(
            f"  Global test of equal arms: {g.statistic_name}({df}) = "
            f"{num(g.statistic, 4)}, p = {pval(g.p_value)}"
        )
        clamp = "  [Cov2 - Cov3 < 0, clamped to 0]" if g.clamped else ""
        out.append(f"  Error term: {g.error_term_formula} = {num(g.error_term, 8)}{clamp}")
    if a.comparisons:
        out.append(
            f"  Pairwise differences (same error term and df; Holm adjustment over "
            f"{len(a.comparisons)} comparison{'s' if len(a.comparisons) > 1 else ''}):"
        )
        out.append(table(*_comparison_rows(a.comparisons, conf, ids)))
    out.append(f"  Single-arm {conf} confidence intervals:")
    rows = [
        [
            f"treatment {ids[0].get(e.treatment, e.treatment)}",
            num(e.estimate),
            num(e.se),
            df_text(e.df),
            _ci(e.ci_low, e.ci_high, 8),
        ]
        for e in a.arms
    ]
    out.append(table(["arm", "estimate", "std err", "df", f"{conf} CI"], rows))
    if a.reader_comparisons:
        out.append("  Single-reader differences (not adjusted for multiplicity):")
        out.append(table(*_comparison_rows(a.reader_comparisons, conf, ids, with_reader=True)))
    return "\n".join(out)


def fom_description(result: ORResult) -> str:
    """The figure of merit's name with its parameters (threshold, partial-AUC range)."""
    fom = FOM_NAMES.get(result.fom, result.fom)
    if result.threshold is not None:
        fom += f" (positive when rating >= {result.threshold:g})"
    params = result.fom_parameters
    if "range" in params:
        low, high = params["range"]
        fom += f" over {params.get('focus', 'specificity')} {low:g} to {high:g}"
        if params.get("standardized"):
            fom += ", McClish-standardized"
    return fom


def render_or_text(result: ORResult) -> str:
    """Readable report of an ORResult: estimates, components, then each analysis."""
    fom = fom_description(result)
    cov = result.cov_method
    if cov == "bootstrap":
        cov += f" ({result.bootstrap_samples} stratified resamples, seed {result.seed})"
    out = [
        f"Obuchowski-Rockette MRMC analysis{': ' + result.source if result.source else ''}",
        f"Figure of merit: {fom}",
        f"Covariance: {cov}    Design: {result.design}"
        + (f" (MRMCaov: {result.mrmcaov_design})" if result.mrmcaov_design else ""),
        f"{len(result.treatments)} treatments, {len(result.readers)} readers, "
        f"{result.n_cases} cases ({result.n_nondiseased} non-diseased, "
        f"{result.n_diseased} diseased)",
        "",
        "Figure of merit by reader and treatment",
    ]
    treatments, readers = display_ids(result.treatments), display_ids(result.readers)
    header = ["reader", *(f"treatment {treatments[t]}" for t in result.treatments)]
    rows = [
        [readers[r], *(num(result.fom_table[i, j]) for i in range(len(result.treatments)))]
        for j, r in enumerate(result.readers)
    ]
    rows.append(["mean", *(num(m) for m in result.arm_means)])
    out += [table(header, rows), ""]

    ms = result.mean_squares
    out.append("Treatment x reader ANOVA of the figures of merit")
    ms_rows = [
        ["T", num(ms.ms_t), df_text(ms.df_t)],
        ["R", num(ms.ms_r), df_text(ms.df_r)],
        ["T*R", num(ms.ms_tr), df_text(ms.df_tr)],
    ]
    ms_rows += [
        [f"R within treatment {treatments[t]}", num(m), df_text(ms.df_r)]
        for t, m in zip(result.treatments, ms.ms_r_by_arm, strict=True)
    ]
    out += [table(["source", "mean square", "df"], ms_rows), ""]

    vc = result.components
    out.append("OR variance components (ANOVA estimates; can be negative)")
    vc_rows = [
        ["Var(R)", num(vc.var_r), ""],
        ["Var(T*R)", num(vc.var_tr), ""],
        ["Cov1", num(vc.cov1), num(vc.corr1)],
        ["Cov2", num(vc.cov2), num(vc.corr2)],
        ["Cov3", num(vc.cov3), num(vc.corr3)],
        ["Var(error)", num(vc.var_error), ""],
    ]
    out += [table(["component", "estimate", "correlation"], vc_rows), ""]
    for analysis in result.analyses.values():
        out += [render_analysis(analysis, result.conf_level, treatments, readers), ""]
    return "\n".join(out).rstrip() + "\n"
