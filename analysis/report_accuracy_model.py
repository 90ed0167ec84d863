"""The report's section on accuracy as a logistic mixed model (stats/accuracy_model.py)."""

from __future__ import annotations

from html import escape

from analysis.report_format import ci, conf_words, num, p_text, reason, table
from analysis.stats.study import StudyAnalysis

METHOD_WORDS = (
    "Accuracy per read as a logistic mixed model: arm, AI correctness (whether the advice of the "
    "trial, or for trials without AI the case's advice, matched the truth) and their interaction "
    "as fixed effects, crossed random intercepts for reader and case, fitted by the Laplace "
    "approximation as lme4's glmer fits it (a variance may be estimated at 0: a singular fit, "
    "said so in the section); each arm's odds ratio of a correct read against the reference arm "
    "is given separately for the cases the AI got right and wrong, with Wald intervals."
)


def _which_cases(ai_correct: bool | None) -> str:
    return {None: "all cases", True: "AI right", False: "AI wrong"}[ai_correct]


def accuracy_model(a: StudyAnalysis) -> str:
    """Odds ratios by AI correctness, the fixed effects and the variance components."""
    out = [reason(a.accuracy_model)]
    model = a.accuracy_model.result
    if model is None or not model.terms:
        return "\n".join(out)
    conf = conf_words(model.conf_level)
    label = a.meta.label
    rows = [
        [
            label(o.arm),
            _which_cases(o.ai_correct),
            num(o.odds_ratio),
            ci(o.ci_low, o.ci_high),
            p_text(o.p_value),
        ]
        for o in model.odds_ratios
    ]
    out.append(
        table(
            ["arm", "cases", "odds ratio of a correct read", f"{conf} CI", "p"],
            rows,
            caption=f"Accuracy versus {label(model.reference)}: logistic mixed model "
            f"({model.n} reads, {model.n_readers} readers, {model.n_cases} cases)",
        )
    )
    rows = [[escape(t.name), num(t.estimate), num(t.se), p_text(t.p_value)] for t in model.terms]
    out.append(table(["term", "log odds", "SE", "p"], rows, caption="Fixed effects"))
    rows = [
        [name, num(value, 4), "0: singular fit" if name in model.zero_variances else ""]
        for name, value in model.variances.items()
    ]
    out.append(
        table(["intercept", "variance (log-odds scale)", ""], rows, caption="Random intercepts")
    )
    if model.zero_variances:
        names = " and ".join(model.zero_variances)
        out.append(
            f'<p class="model-note">The {escape(names)} variance is estimated at 0 (a singular '
            "fit, as lme4 reports it); the model is kept as planned.</p>"
        )
    return "\n".join(out)
