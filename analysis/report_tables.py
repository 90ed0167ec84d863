"""The tables of each section of the study report (HTML fragments; see report.py).

Every interval shown lies in the range of its parameter: proportions use Wilson intervals,
Cohen's kappa a percentile bootstrap; the MRMC tables (figures of merit, OR differences) are in
report_mrmc_tables.py.
"""

from __future__ import annotations

from html import escape

from analysis.report_alignment import alignment_table
from analysis.report_format import (
    arm_label,
    ci,
    conf_words,
    num,
    p_text,
    paragraph,
    prop_cell,
    reason,
    table,
)
from analysis.stats.reading_time import MODEL_WORDS
from analysis.stats.study import StudyAnalysis, StudyMeta

# ----------------------------------------------------------------------------- counts


def empty_explanations(a: StudyAnalysis) -> str:
    """Main trials per heatmap arm that showed an empty explanation, and the sensitivity line."""
    counts = a.counts.result.empty_explanations
    if not counts:
        return ""
    rows = [[a.meta.label(c.arm), c.heatmap_trials, c.empty_trials] for c in counts]
    out = [
        table(
            ["arm", "main trials with a heatmap", "empty explanation shown"],
            rows,
            caption="Main trials that showed an empty explanation (“No region highlighted”)",
        )
    ]
    affected = [c for c in counts if c.empty_trials]
    if not affected:
        out.append(paragraph("No main trial showed an empty explanation."))
        return "\n".join(out)
    parts = [
        f"{a.meta.label(c.arm)}: {num(c.accuracy.estimate)} ({c.accuracy.successes}/"
        f"{c.accuracy.total}) over all its main trials, "
        f"{num(c.accuracy_without_empty.estimate)} ({c.accuracy_without_empty.successes}/"
        f"{c.accuracy_without_empty.total}) without the {c.empty_trials} that showed an "
        "empty explanation"
        for c in affected
    ]
    out.append(
        paragraph(
            "Sensitivity analysis, accuracy of the final answers (pooled over "
            "readers): " + "; ".join(parts) + "."
        )
    )
    return "\n".join(out)


def counts(a: StudyAnalysis) -> str:
    c = a.counts.result
    out = [reason(a.counts)]
    rows = [
        [
            a.meta.label(arm.arm),
            arm.reads,
            arm.readers,
            arm.cases,
            arm.positive_cases,
            arm.negative_cases,
        ]
        for arm in c.arms
    ]
    rows.append(["all arms", c.main_reads, c.readers, c.cases, "", ""])
    out.append(
        table(
            ["arm", "main reads", "readers", "cases", "positive cases", "negative cases"],
            rows,
            caption="Main reads per arm",
        )
    )
    left = [[why, n] for why, n in c.excluded.items() if n]
    if left:
        out.append(table(["reads left out", "number"], left, caption="Exclusions"))
    else:
        out.append(paragraph("No read was left out."))
    out.append(empty_explanations(a))
    return "\n".join(out)


def _proportion_table(meta: StudyMeta, res, caption: str) -> str:
    rows = [
        [
            meta.label(p.arm),
            prop_cell(p.sensitivity),
            prop_cell(p.specificity),
            prop_cell(p.accuracy),
        ]
        for p in res.arms
    ]
    return table(
        ["arm", "sensitivity", "specificity", "accuracy"],
        rows,
        caption=f"{caption} ({res.n_reads} reads; {res.n_excluded} left out; "
        "estimate (count) over the Wilson interval)",
    )


def proportions(a: StudyAnalysis) -> str:
    res = a.proportions.result
    out = [reason(a.proportions)]
    if res is not None:
        out.append(_proportion_table(a.meta, res.final, "Final answers"))
        if res.first is not None and res.first.n_reads:
            out.append(_proportion_table(a.meta, res.first, "Unaided first-stage answers"))
    return "\n".join(out)


# ----------------------------------------------------------------------------- reliance


def reliance(a: StudyAnalysis, figure: str) -> str:
    out = [reason(a.reliance)]
    res = a.reliance.result
    if res is None or not a.reliance.ok:
        return "\n".join(out)
    header = [
        "arm",
        "reads",
        "switch rate",
        "agreement with AI",
        "RAIR",
        "RSR",
        "over-reliance",
        "under-reliance",
    ]

    def row(m, label):
        return [
            label,
            m.n_reads,
            prop_cell(m.switch_rate),
            prop_cell(m.agreement_after),
            prop_cell(m.rair),
            prop_cell(m.rsr),
            prop_cell(m.over_reliance),
            prop_cell(m.under_reliance),
        ]

    rows = [row(m, a.meta.label(m.arm)) for m in res.arms] + [row(res.overall, "all arms")]
    out.append(
        table(header, rows, caption="Reliance measures (estimate (count) over the Wilson interval)")
    )
    acc = [
        [
            a.meta.label(m.arm),
            prop_cell(m.accuracy_before),
            prop_cell(m.accuracy_after),
            prop_cell(m.ai_accuracy),
        ]
        for m in res.arms
    ]
    out.append(
        table(
            ["arm", "accuracy before AI", "accuracy after AI", "AI accuracy"],
            acc,
            caption="Accuracy before and after seeing the AI",
        )
    )
    wrong = [
        [a.meta.label(m.arm), m.n_reads, prop_cell(m.accuracy_after), prop_cell(m.agreement_after)]
        for m in res.ai_wrong_arms
    ]
    out.append(
        table(
            ["arm", "reads", "final accuracy", "agreement with AI"],
            wrong,
            caption="Reads where the AI was wrong",
        )
    )
    out.append(alignment_table(res.alignment, a.meta.label))
    out.append(figure)
    return "\n".join(out)


def agreement(a: StudyAnalysis) -> str:
    out = [reason(a.agreement)]
    res = a.agreement.result
    if res is None:
        return "\n".join(out)
    conf = conf_words(a.meta.conf_level)
    rows = []
    for arm in res.fleiss:
        k = arm.kappa
        raters = f"{k.raters_min}–{k.raters_max}" if k.raters_min is not None else "n/a"
        rows.append(
            [
                a.meta.label(arm.arm),
                num(k.kappa),
                ci(k.ci_low, k.ci_high),
                k.n_subjects,
                raters,
                k.reason or "",
            ]
        )
    out.append(
        table(
            [
                "arm",
                "Fleiss' kappa",
                f"{conf} CI",
                "cases (≥ 2 readers)",
                "readers per case",
                "note",
            ],
            rows,
            caption="Agreement between readers on the final diagnosis (percentile "
            "bootstrap over cases)",
        )
    )
    if res.reader_ai:
        rows = [
            [
                a.meta.label(k.arm),
                k.reader,
                k.n,
                num(k.kappa),
                ci(k.ci_low, k.ci_high),
                k.reason or "",
            ]
            for k in res.reader_ai
        ]
        methods = sorted({k.interval for k in res.reader_ai if k.kappa is not None})
        out.append(
            table(
                ["arm", "reader", "reads", "Cohen's kappa", f"{conf} CI", "note"],
                rows,
                caption="Agreement of each reader with the AI ("
                + ", ".join(methods or ["no interval"])
                + ")",
            )
        )
    return "\n".join(out)


# ----------------------------------------------------------------------------- ratings, time


def ratings(a: StudyAnalysis, figure: str) -> str:
    out = [reason(a.ratings)]
    res = a.ratings.result
    if res is None:
        return "\n".join(out)
    conf = conf_words(a.meta.conf_level)
    for item in res.items:
        out.append(f"<h3>{escape(item.replace('_', ' '))}</h3>")
        points = res.points[item]
        rows = [
            [a.meta.label(d.arm), d.n, num(d.median, 1), num(d.iqr, 1)]
            + [f"{lv.share:.0%}" if lv.share is not None else "" for lv in d.levels]
            for d in res.distributions
            if d.item == item and d.n
        ]
        out.append(
            table(
                ["arm", "n", "median", "IQR"] + [str(k) for k in range(1, points + 1)],
                rows,
                caption=f"Distribution (1–{points})",
            )
        )
        fit = next((f for f in res.models if f.item == item), None)
        if fit is None:
            continue
        if fit.reason:
            out.append(f'<p class="reason">Model not fitted: {escape(fit.reason)}</p>')
        elif fit.odds_ratios:
            rows = [
                [
                    a.meta.label(o.arm),
                    num(o.odds_ratio, 2),
                    ci(o.ci_low, o.ci_high, 2),
                    p_text(o.p_value),
                ]
                for o in fit.odds_ratios
            ]
            out.append(
                table(
                    ["arm", "odds ratio", f"{conf} CI", "p"],
                    rows,
                    caption=f"Proportional-odds model versus "
                    f"{a.meta.label(fit.reference)} ({fit.n} ratings, "
                    f"{fit.n_readers} readers; SE: {fit.cov_type})",
                )
            )
        if fit.notes:
            out.append(
                '<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in fit.notes) + "</ul>"
            )
    out.append(figure)
    return "\n".join(out)


def reading_time(a: StudyAnalysis, figure: str) -> str:
    """Times per arm, the model choice in plain words (once), and the ratios of the model used."""
    out = [reason(a.reading_time)]
    res = a.reading_time.result
    if res is None:
        return "\n".join(out)
    model = res.model
    rows = [
        [a.meta.label(t.arm), t.n, num(t.geometric_mean_seconds, 1), num(t.median_seconds, 1)]
        for t in model.arms
    ]
    out.append(
        table(
            ["arm", "reads", "geometric mean (s)", "median (s)"],
            rows,
            caption="Reading time per case",
        )
    )
    if model.model_note:
        out.append(f'<p class="model-note">{escape(model.model_note)}</p>')
    if model.ratios:
        conf = conf_words(model.conf_level)
        rows = [
            [a.meta.label(r.arm), num(r.ratio), ci(r.ci_low, r.ci_high), p_text(r.p_value)]
            for r in model.ratios
        ]
        out.append(
            table(
                ["arm", "time ratio", f"{conf} CI", "p"],
                rows,
                caption=f"Ratio of geometric mean times versus "
                f"{a.meta.label(model.reference)} "
                f"({MODEL_WORDS[model.model]})",
            )
        )
    if model.model == "crossed":
        out.append(_time_variances(model))
    out.append(figure)
    return "\n".join(out)


def _time_variances(model) -> str:
    """The crossed model's variance components of log time, a zero marked as a singular fit."""
    parts = [*model.variance_components.items(), ("residual", model.residual_variance)]
    rows = [
        [
            name,
            num(value, 4),
            num(value**0.5 if value is not None else None, 4),
            "0: singular fit" if name in model.zero_variances else "",
        ]
        for name, value in parts
    ]
    return table(
        ["component", "variance", "SD", ""],
        rows,
        caption="Variance components of log time (REML)",
    )


# ----------------------------------------------------------------------------- gain, subgroups


def gain(a: StudyAnalysis, figure: str) -> str:
    out = [reason(a.explanation_gain)]
    res = a.explanation_gain.result
    if res is None:
        return "\n".join(out)
    g_res = res.gain
    conf = conf_words(g_res.conf_level)
    rows = [
        [
            a.meta.label(g.arm),
            prop_cell(g.accuracy_arm),
            prop_cell(g.accuracy_unaided),
            num(g.difference),
            ci(g.bootstrap_ci_low, g.bootstrap_ci_high),
            ci(g.newcombe_ci_low, g.newcombe_ci_high),
            g.reason or "",
        ]
        for g in g_res.arms
    ]
    out.append(
        table(
            [
                "arm",
                "accuracy",
                "unaided accuracy",
                "gain",
                f"{conf} CI (case bootstrap)",
                f"{conf} CI (Newcombe)",
                "note",
            ],
            rows,
            caption=f"Accuracy gain over {arm_label(a.meta, g_res.unaided)}",
        )
    )
    if res.correlations:
        rows = [
            [
                a.meta.label(c.arm),
                c.metric.replace("_", " "),
                num(c.correlation.rho),
                p_text(c.correlation.p_value),
                c.correlation.n,
                c.correlation.reason or "",
            ]
            for c in res.correlations
        ]
        out.append(
            table(
                ["arm", "metric", "Spearman ρ", "p", "cases", "note"],
                rows,
                caption="Explanation metric versus per-case gain",
                wrap=(1,),
            )
        )
    else:
        out.append(paragraph("No explanation-quality metrics were given."))
    out.append(figure)
    return "\n".join(out)


def subgroups(a: StudyAnalysis) -> str:
    out = [reason(a.subgroups)]
    res = a.subgroups.result
    if res is None:
        return "\n".join(out)
    out.append(paragraph(f"Threshold: {res.threshold:g} years ({res.threshold_source})."))
    for g in res.groups:
        out.append(
            f"<h3>Readers with {escape(g.label)} of experience "
            f"({len(g.readers)} readers, {g.n_reads} reads)</h3>"
        )
        if g.reason:
            out.append(f'<p class="reason">{escape(g.reason)}</p>')
            continue
        gains = {x.arm: x for x in (g.gain.arms if g.gain is not None else ())}
        rows = []
        for p in g.proportions.arms:
            x = gains.get(p.arm)
            rows.append(
                [
                    a.meta.label(p.arm),
                    prop_cell(p.accuracy),
                    prop_cell(p.sensitivity),
                    prop_cell(p.specificity),
                    (num(x.difference), ci(x.bootstrap_ci_low, x.bootstrap_ci_high))
                    if x is not None
                    else "—",
                ]
            )
        out.append(
            table(
                [
                    "arm",
                    "accuracy",
                    "sensitivity",
                    "specificity",
                    "gain over unaided (bootstrap CI)",
                ],
                rows,
            )
        )
        if g.gain_reason:
            out.append(f'<p class="reason">Gain not computed: {escape(g.gain_reason)}</p>')
    return "\n".join(out)


# ----------------------------------------------------------------------------- software


def software(generated_at: str, versions: dict[str, str]) -> str:
    rows = [[name, version] for name, version in sorted(versions.items())]
    return paragraph(f"Generated {generated_at}.") + table(
        ["package", "version"], rows, numeric_from=99
    )
