"""The study report: one self-contained HTML document (and its PDF) from a ``StudyAnalysis``.

``render_html`` writes plain HTML with inline CSS and the figures as base64 PNG ``data:`` URIs
(report_figures.py), so the file opens offline and refers to nothing outside itself; the
section tables are in report_tables.py (the MRMC ones in report_mrmc_tables.py) and their
layout (tables that fit the page) in report_format.py. It does not use Django: it can run in a worker, a script or a test.
``render_pdf`` lays the same HTML out with WeasyPrint.

Arms appear only by their ``ArmMeta.label`` (neutral unless the caller unblinded the study);
an explainer's name appears only where the caller put it into ``ArmMeta``. Every section says
why it is empty when its analysis could not be computed.
"""

from __future__ import annotations

from html import escape

from analysis import report_accuracy_model as accuracy_model_tables
from analysis import report_mrmc_tables as mrmc_tables
from analysis import report_quality as quality_tables
from analysis import report_tables as tables
from analysis.report_figures import (
    forest_figure,
    likert_figure,
    metric_figure,
    reliance_figure,
    roc_figure,
    time_figure,
)
from analysis.report_format import (
    CSS,
    FOM_WORDS,
    arm_label,
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
from analysis.report_questionnaires import questionnaires_section
from analysis.stats.reading_time import MODEL_WORDS
from analysis.stats.study import StudyAnalysis, StudyMeta

SECTION_TITLES = {
    "summary": "Summary",
    "methods": "Study and methods",
    "counts": "Readers, cases and reads",
    "quality": "Data quality",
    "proportions": "Sensitivity, specificity and accuracy",
    "mrmc_auc": "ROC analysis (Obuchowski–Rockette)",
    "mrmc_accuracy": "Accuracy (Obuchowski–Rockette)",
    "accuracy_model": "Accuracy by AI correctness (logistic mixed model)",
    "reliance": "Reliance on the AI",
    "agreement": "Agreement",
    "ratings": "Likert ratings",
    "reading_time": "Reading time",
    "questionnaires": "Questionnaires",
    "explanation_gain": "Explanation gain",
    "subgroups": "Subgroups by reader experience",
    "software": "Software",
}
FIGURE_IDS = ("roc", "forest", "likert", "reliance", "metric_gain", "reading_time")


# ----------------------------------------------------------------------------- summary


def _summary(a: StudyAnalysis) -> str:
    meta = a.meta
    out = []
    counts = a.counts.result
    out.append(
        paragraph(
            f"{counts.readers} readers read {counts.cases} cases in {len(counts.arms)} arms "
            f"({counts.main_reads} main reads; {_design_words(meta)}, {_protocol_words(meta)})."
        )
    )
    conf = f"{meta.conf_level * 100:g}%"
    auc = a.mrmc_auc
    if auc.ok:
        res = auc.result.or_result
        rrrc = res.analyses.get("rrrc")
        means = ", ".join(
            f"{meta.label(t)} {m:.3f}" for t, m in zip(res.treatments, res.arm_means, strict=True)
        )
        out.append(paragraph(f"Reader-averaged {fom_name(auc.result.fom)}: {means}."))
        if rrrc is not None and rrrc.global_test is not None:
            g = rrrc.global_test
            out.append(
                paragraph(
                    f"Test of equal AUCs across arms (OR, random readers and cases): "
                    f"F({df_text(g.df1)}, {df_text(g.df2)}) = {num(g.statistic, 2)}, "
                    f"p = {p_text(g.p_value)}."
                )
            )
        for c in auc.result.primary:
            status = quality_tables.comparison_status(meta, auc.result.fom, "rrrc", c)
            out.append(
                paragraph(
                    f"Primary: AUC of {meta.label(c.minuend)} minus {meta.label(c.subtrahend)} = "
                    f"{num(c.estimate)} ({conf} CI {ci(c.ci_low, c.ci_high)}), "
                    f"p = {p_text(c.p_value)} (Holm {p_text(c.p_holm)}; {status})."
                )
            )
    else:
        out.append(paragraph(f"The MRMC ROC analysis was not computed: {auc.reason}"))
    out.append(quality_tables.summary_words(a))
    if a.reliance.ok:
        o = a.reliance.result.overall
        out.append(
            paragraph(
                f"Reliance over all aided arms: RAIR {num(o.rair.estimate)}, RSR "
                f"{num(o.rsr.estimate)}, switch rate {num(o.switch_rate.estimate)} "
                f"({o.n_reads} reads)."
            )
        )
    if a.explanation_gain.ok:
        gains = a.explanation_gain.result.gain
        parts = [
            f"{meta.label(g.arm)} {num(g.difference)} "
            f"({ci(g.bootstrap_ci_low, g.bootstrap_ci_high)})"
            for g in gains.arms
        ]
        out.append(
            paragraph(
                f"Accuracy gain over {arm_label(meta, gains.unaided)} ({conf} case-bootstrap CI): "
                + "; ".join(parts)
                + "."
            )
        )
    skipped = [
        SECTION_TITLES[name]
        for name, s in a.sections().items()
        if s.reason and name in SECTION_TITLES
    ]
    if skipped:
        out.append(
            paragraph("Not computed (see each section for the reason): " + ", ".join(skipped) + ".")
        )
    return "\n".join(out)


def _design_words(meta: StudyMeta) -> str:
    return (
        "Latin-square split-plot design: each reader read each case once, under one arm"
        if meta.design == "latin_square"
        else "fully crossed design: every reader read every case under every arm"
    )


def _protocol_words(meta: StudyMeta) -> str:
    return (
        "two-stage reading: an unaided first answer, then the arm's AI output and a final answer"
        if meta.two_stage
        else "single-stage reading: one answer per case"
    )


def _time_words(a: StudyAnalysis) -> str:
    res = a.reading_time.result
    used = res.model.model if res is not None else None
    text = (
        f"Reading time: a linear mixed model on log seconds with arm as fixed effect and "
        f"crossed random intercepts for reader and case, fitted by REML as lme4's lmer fits "
        f"it (a variance may be estimated at 0: a singular fit, said so below); effects are "
        f"ratios of geometric mean times with Wald intervals. Only if that model cannot be "
        f"fitted is {MODEL_WORDS['ols']} reported instead."
    )
    if used is not None:
        text += f" Used here: {MODEL_WORDS[used]}."
    return text


def _interval_words(meta: StudyMeta) -> str:
    return (
        "Intervals respect the range of each parameter. The OR differences between arms are "
        "the untransformed intervals of the reference software (MRMCaov, RJafroc: estimate "
        "± t × SE with Hillis df), which lie within −1 to 1 in practice (a table note says "
        "if one had to be clipped); the per-arm AUC and accuracy intervals are computed on "
        "the logit scale with a delta-method SE (SE / (p(1 − p)), Hillis df) and transformed "
        "back, so they lie within 0–1 (at an estimate of exactly 0 or 1 the logit is "
        "undefined: with SE 0 the interval has zero width, otherwise the Wald interval is "
        "clipped to 0–1). Cohen's kappa of each reader with the AI uses a percentile "
        f"bootstrap over reads ({meta.n_bootstrap} samples, seed {meta.seed}) instead of the "
        "Wald interval, which can pass 1."
    )


def _discrimination_words(a: StudyAnalysis) -> str:
    meta = a.meta
    fom = FOM_WORDS.get(meta.auc_fom, meta.auc_fom)
    auc = a.mrmc_auc
    design = (
        f" MRMCaov calls this design “{auc.result.or_result.mrmcaov_design}”."
        if auc.ok and auc.result.or_result.mrmcaov_design
        else ""
    )
    return (
        f"Discrimination: {fom} of each reader's final confidence in each arm, compared across "
        "arms with the Obuchowski–Rockette (OR) method with Hillis (2007) denominator degrees "
        f"of freedom and {cov_words(meta.cov_method, meta)} (chosen when the report was "
        f"requested).{design} Random readers and random cases (RRRC) is the primary analysis; "
        "fixed readers (FRRC) and fixed cases (RRFC) are reported too. In a split-plot layout "
        "the covariance of two reader-arm units is estimated over the cases they share (zero "
        "when they share none). Every pairwise difference is tested, with Holm's step-down "
        "adjustment over all pairs; the comparisons with the unaided arm (arm minus unaided) "
        "are the primary result. The same OR analysis, with a jackknife estimate of the "
        "case-sampling covariance, is applied to the accuracy of the final diagnosis."
    )


def _methods(a: StudyAnalysis) -> str:
    meta = a.meta
    conf = conf_words(meta.conf_level)
    boot = meta.n_bootstrap
    paragraphs = [
        f"{_design_words(meta)}; {_protocol_words(meta)}. The finding is "
        f"“{meta.positive_class or 'positive'}”. Only main trials are analysed; training and "
        f"attention-check trials are left out. Intervals are {conf}.",
        quality_tables.plan_words(meta.analysis_plan),
        quality_tables.rule_words(meta.quality_rules),
        _discrimination_words(a),
        _interval_words(meta),
        accuracy_model_tables.METHOD_WORDS,
        "Sensitivity, specificity and accuracy pooled over readers with Wilson score "
        "intervals (descriptive: reads are treated as independent).",
        "Reliance on the AI (two-stage reading): the definitions of Schemmer et al. (2023) — "
        "relative AI reliance (RAIR), relative self-reliance (RSR), over- and under-reliance "
        "and the switch rate — from the first and final answers, with Wilson intervals.",
        f"Agreement between readers: Fleiss' kappa of the final diagnosis per arm in Gwet's "
        f"generalisation to unequal numbers of readers per case, with a percentile bootstrap "
        f"over cases ({boot} samples); agreement of each reader with the AI: Cohen's kappa "
        f"with a percentile bootstrap over reads.",
        "Likert ratings: a proportional-odds (cumulative logit) model per item with arm as "
        "predictor and reader-clustered (sandwich) standard errors; an odds ratio above 1 "
        "means higher ratings than in the reference arm.",
        _time_words(a),
        f"Explanation gain: accuracy of each aided arm minus unaided accuracy, with a "
        f"percentile bootstrap over cases ({boot} samples, seed {meta.seed}) and Newcombe's "
        f"hybrid score interval; the per-case gain is related to each explanation-quality "
        f"metric by Spearman's rank correlation.",
    ]
    if a.counts.result is not None and a.counts.result.empty_explanations:
        rule = (
            meta.empty_rule
            or "An explanation counts as empty when its heatmap highlights no region."
        )
        paragraphs.append(
            f"Empty explanations: {rule} Readers saw a neutral “No region highlighted” state "
            "for those trials; they stay in every analysis, the number per arm is reported, "
            "and the arm's accuracy is also given without them (sensitivity analysis)."
        )
    if a.subgroups.result is not None:
        sg = a.subgroups.result
        paragraphs.append(
            f"Subgroups: readers with fewer than {sg.threshold:g} years of "
            f"experience versus the others (threshold: {sg.threshold_source})."
        )
    out = [paragraph(p) for p in paragraphs]
    out.append(_arm_table(meta))
    return "\n".join(out)


def _arm_table(meta: StudyMeta) -> str:
    blinded = not any(arm.explainer for arm in meta.arms)
    header = ["code", "arm", "AI shown", "explanation shown"]
    rows = [
        [
            arm.code,
            arm.label,
            "yes" if arm.shows_ai else "no",
            "yes" if arm.shows_explanation else "no",
        ]
        + ([] if blinded else [arm.explainer or "—"])
        for arm in meta.arms
    ]
    if not blinded:
        header.append("explainer")
    return table(header, rows, caption="Arms", numeric_from=99) + paragraph(
        "Arm labels are blinded: explainers are not named."
        if blinded
        else "Unblinded report: explainers are named."
    )


# ----------------------------------------------------------------------------- assembly


def render_html(
    analysis: StudyAnalysis,
    *,
    generated_at: str,
    versions: dict[str, str],
    questionnaires: list[dict] | None = None,
) -> str:
    """The report as one self-contained HTML document (no external resources).

    ``questionnaires`` (analysis.questionnaire_data.questionnaire_summary) adds the
    Questionnaires section; None (a study that asks none) leaves it out."""
    a = analysis
    codes = [arm.arm for arm in a.counts.result.arms]
    figures = {
        "roc": roc_figure(a, codes),
        "forest": forest_figure(a),
        "likert": likert_figure(a, codes),
        "reliance": reliance_figure(a, codes),
        "metric_gain": metric_figure(a, codes),
        "reading_time": time_figure(a, codes),
    }
    bodies = {
        "summary": _summary(a),
        "methods": _methods(a),
        "counts": tables.counts(a),
        "quality": quality_tables.quality(a),
        "proportions": tables.proportions(a),
        "mrmc_auc": mrmc_tables.mrmc(
            a, "mrmc_auc", reason(a.roc) + figures["roc"] + figures["forest"]
        ),
        "mrmc_accuracy": mrmc_tables.mrmc(a, "mrmc_accuracy", ""),
        "accuracy_model": accuracy_model_tables.accuracy_model(a),
        "reliance": tables.reliance(a, figures["reliance"]),
        "agreement": tables.agreement(a),
        "ratings": tables.ratings(a, figures["likert"]),
        "reading_time": tables.reading_time(a, figures["reading_time"]),
        "questionnaires": questionnaires_section(questionnaires or []),
        "explanation_gain": tables.gain(a, figures["metric_gain"]),
        "subgroups": tables.subgroups(a),
        "software": tables.software(generated_at, versions),
    }
    title = escape(a.meta.title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}: reader-study report</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="meta">Reader-study report · generated {escape(generated_at)} · '
        + ("blinded arm labels" if not any(arm.explainer for arm in a.meta.arms) else "unblinded")
        + "</p>",
    ]
    if questionnaires is None:
        del bodies["questionnaires"]
    for key, body in bodies.items():
        parts.append(
            f'<section id="{key}"><h2>{escape(SECTION_TITLES[key])}</h2>\n{body}</section>'
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_pdf(html: str) -> bytes:
    """The HTML report as a PDF (WeasyPrint; the HTML refers to nothing outside itself)."""
    from PIL import ImageFile

    strict = ImageFile.LOAD_TRUNCATED_IMAGES
    import weasyprint  # sets Pillow's process-wide LOAD_TRUNCATED_IMAGES = True on import

    ImageFile.LOAD_TRUNCATED_IMAGES = strict  # keep image imports elsewhere in this process strict

    try:  # WeasyPrint >= 68: a fetcher object that refuses every protocol but data:
        from weasyprint.urls import URLFetcher

        fetcher = URLFetcher(allowed_protocols=("data",))
    except ImportError:  # older WeasyPrint: a fetcher function

        def fetcher(url: str, *args, **kwargs):
            if not url.startswith("data:"):
                raise ValueError(f"the report may not load {url}")
            return weasyprint.default_url_fetcher(url, *args, **kwargs)

    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
