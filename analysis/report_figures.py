"""The figures of the study report: matplotlib's Agg canvas, embedded as PNG ``data:`` URIs.

``build_figure`` draws on a ``Figure`` + ``FigureCanvasAgg`` (no pyplot, so no global figure
registry and nothing left open) inside the report's font settings; ``figure_html`` embeds it.
The forest plot sizes itself to the number of comparisons, wraps long labels, keeps its tick
labels apart and says in its caption which comparisons have a zero-width interval.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from analysis.report_format import and_list, conf_words, fom_name, num, p_text, short
from analysis.report_mrmc_tables import GROUP_TITLES
from analysis.stats.study import MRMCSection, StudyAnalysis

PALETTE = (
    "#4c72b0",
    "#dd8452",
    "#55a868",
    "#c44e52",
    "#8172b3",
    "#937860",
    "#da8bc3",
    "#8c8c8c",
    "#ccb974",
    "#64b5cd",
)
RC = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
}
LABEL_CHARS = 24  # forest-plot labels wrap at this many characters


def build_figure(draw: Callable, *, width: float, height: float):
    """A drawn ``Figure`` (Agg canvas, constrained layout, the report's font sizes)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig)
        fig.canvas.draw()
    return fig


def figure_html(
    draw: Callable, *, width: float, height: float, alt: str, caption: str, figure_id: str
) -> str:
    """Draw and embed the PNG; a drawing error becomes a note."""
    try:
        fig = build_figure(draw, width=width, height=height)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=130, metadata={"Software": None})
        fig.clear()
    except (ValueError, TypeError, RuntimeError) as exc:
        return f'<p class="reason">Figure not drawn: {escape(str(exc))}</p>'
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure id="fig-{figure_id}"><img src="data:image/png;base64,{data}" '
        f'alt="{escape(alt)}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def _colour(codes: Sequence[str], code: str) -> str:
    return PALETTE[list(codes).index(code) % len(PALETTE)] if code in codes else "#333333"


def roc_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    curves = [c for c in (a.roc.result or ()) if c.reason is None]
    if not curves:
        return ""

    def draw(fig):
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#aaaaaa", lw=0.8, ls="--")
        for c in curves:
            ax.plot(
                c.fpr,
                c.tpr,
                drawstyle="default",
                lw=1.4,
                color=_colour(codes, c.arm),
                label=f"{a.meta.label(c.arm)} (pooled AUC {c.auc:.3f})",
            )
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="1 − specificity (false-positive fraction)",
            ylabel="sensitivity (true-positive fraction)",
            aspect="equal",
        )
        ax.legend(loc="lower right", frameon=False)

    return figure_html(
        draw,
        width=5.2,
        height=4.6,
        figure_id="roc",
        alt="Empirical ROC curves per arm",
        caption="Figure: empirical ROC curves of the final confidence per arm, every "
        "reader's reads pooled (descriptive; the OR analysis averages "
        "per-reader AUCs).",
    )


def ordered_comparisons(section: MRMCSection):
    groups = section.groups.get("rrrc")
    if groups is None:
        return []
    return [(name, c) for name in GROUP_TITLES for c in getattr(groups, name)]


@dataclass(frozen=True)
class ForestSpec:
    panels: tuple  # (MRMCSection, axis title)
    rows: tuple  # (group name, minuend, subtrahend), top to bottom
    labels: tuple[str, ...]
    width: float
    height: float
    caption: str


def _zero_width(c) -> bool:
    return c.se == 0 or math.isclose(c.ci_low, c.ci_high, abs_tol=1e-12)


def _degenerate_words(a: StudyAnalysis, panels) -> str:
    """Caption sentences on zero-width intervals and arms whose per-arm SE is 0."""
    out = []
    for section, title in panels:
        zero = [
            f"{short(a.meta, c.minuend)} − {short(a.meta, c.subtrahend)}"
            for _, c in ordered_comparisons(section)
            if _zero_width(c)
        ]
        total = len(ordered_comparisons(section))
        if zero:
            which = (
                f"all {total} comparisons have"
                if len(zero) == total > 1
                else f"{len(zero)} of {total} comparisons {'have' if len(zero) > 1 else 'has'}"
            )
            out.append(
                f"{title[0].upper()}{title[1:]}: {which} standard error 0, a "
                f"zero-width interval drawn as an open diamond without a bar "
                f"({and_list(zero)})."
            )
        rrrc = section.or_result.analyses.get("rrrc")
        flat = [e for e in (rrrc.arms if rrrc else ()) if e.se == 0]
        if len(flat) > 1 or (flat and zero):
            fom = fom_name(section.fom)
            names = and_list([f"{short(a.meta, e.treatment)} ({num(e.estimate)})" for e in flat])
            out.append(
                f"Every reader has the same {fom} within {names} (per-arm SE 0), so "
                "differences between these arms show no spread."
            )
    return " ".join(out)


def forest_spec(a: StudyAnalysis) -> ForestSpec | None:
    panels = tuple(
        (s.result, title)
        for s, title in ((a.mrmc_auc, "AUC difference"), (a.mrmc_accuracy, "accuracy difference"))
        if s.ok and ordered_comparisons(s.result)
    )
    if not panels:
        return None
    rows = tuple((name, c.minuend, c.subtrahend) for name, c in ordered_comparisons(panels[0][0]))
    labels = tuple(
        textwrap.fill(f"{short(a.meta, m)} − {short(a.meta, s)}", LABEL_CHARS) for _, m, s in rows
    )
    lines = sum(label.count("\n") + 1 for label in labels)
    caption = (
        "Figure: differences between arms from the OR analysis (random readers and "
        "cases; red: versus the unaided arm, arm minus unaided) with Hillis-df "
        "confidence intervals; Holm-adjusted p-values are in the tables."
    )
    degenerate = _degenerate_words(a, panels)
    return ForestSpec(
        panels,
        rows,
        labels,
        width=6.6,
        height=max(0.22 * lines + 0.12 * len(rows) + 1.0, 1.8),
        caption=caption + (" " + degenerate if degenerate else ""),
    )


def _x_limits(comparisons) -> tuple[float, float]:
    lows = [min(c.ci_low, c.estimate) for c in comparisons] + [0.0]
    highs = [max(c.ci_high, c.estimate) for c in comparisons] + [0.0]
    lo, hi = min(lows), max(highs)
    if hi - lo < 0.1:  # zero-width or tiny intervals: a readable window around them
        centre = (hi + lo) / 2
        lo, hi = centre - 0.05, centre + 0.05
    pad = 0.06 * (hi - lo)
    return lo - pad, hi + pad


def draw_forest(fig, a: StudyAnalysis, spec: ForestSpec) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axes = fig.subplots(1, len(spec.panels), sharey=True, squeeze=False)[0]
    y = list(range(len(spec.rows)))[::-1]
    conf = conf_words(a.meta.conf_level)
    for ax, (section, title) in zip(axes, spec.panels, strict=True):
        by_pair = {(c.minuend, c.subtrahend): c for _, c in ordered_comparisons(section)}
        shown = []
        for yi, (name, m, s) in zip(y, spec.rows, strict=True):
            c = by_pair.get((m, s))
            if c is None:
                continue
            shown.append(c)
            colour = "#c44e52" if name == "versus_unaided" else "#4c72b0"
            if _zero_width(c):
                ax.plot(c.estimate, yi, marker="D", mfc="white", mec=colour, ms=5, ls="none")
                continue
            ax.errorbar(
                c.estimate,
                yi,
                xerr=[[c.estimate - c.ci_low], [c.ci_high - c.estimate]],
                fmt="o",
                color=colour,
                ms=4,
                capsize=2.5,
                lw=1.2,
            )
        ax.axvline(0, color="#777777", lw=0.8, ls="--")
        if shown:
            ax.set_xlim(*_x_limits(shown))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4 if len(spec.panels) > 1 else 6))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: num(v, 2)))
        ax.set_xlabel(f"{title}\n(RRRC, {conf} CI)")
    axes[0].set_yticks(y, spec.labels)
    axes[0].set_ylim(-0.7, len(spec.rows) - 0.3)
    fig.get_layout_engine().set(w_pad=0.08, wspace=0.08)


def forest_figure(a: StudyAnalysis) -> str:
    spec = forest_spec(a)
    if spec is None:
        return ""
    return figure_html(
        lambda fig: draw_forest(fig, a, spec),
        width=spec.width,
        height=spec.height,
        figure_id="forest",
        alt="Forest plot of differences between arms",
        caption=spec.caption,
    )


def likert_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    res = a.ratings.result
    if res is None or not res.items:
        return ""
    from matplotlib import colormaps

    items = res.items

    def draw(fig):
        sizes = [max(1, sum(1 for d in res.distributions if d.item == i and d.n)) for i in items]
        axes = fig.subplots(len(items), 1, squeeze=False, gridspec_kw={"height_ratios": sizes})[
            :, 0
        ]
        for ax, item in zip(axes, items, strict=True):
            dists = [d for d in res.distributions if d.item == item and d.n > 0]
            points = res.points[item]
            cmap = colormaps["RdYlGn"]
            colours = [cmap(0.1 + 0.8 * k / max(points - 1, 1)) for k in range(points)]
            ys = list(range(len(dists)))[::-1]
            for y, d in zip(ys, dists, strict=True):
                left = 0.0
                for k, level in enumerate(d.levels):
                    share = level.share or 0.0
                    ax.barh(
                        y,
                        share,
                        left=left,
                        color=colours[k],
                        edgecolor="white",
                        lw=0.5,
                        label=str(level.level) if y == ys[0] else None,
                    )
                    left += share
            ax.set_yticks(ys, [f"{short(a.meta, d.arm)} (n={d.n})" for d in dists])
            ax.set_xlim(0, 1)
            ax.set_title(item.replace("_", " "), loc="left")
            ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
        axes[0].legend(
            title="rating",
            ncols=max(res.points.values()),
            loc="lower right",
            bbox_to_anchor=(1.0, 1.02),
            frameon=False,
        )

    height = (
        sum(
            0.35 * max(1, sum(1 for d in res.distributions if d.item == i and d.n)) + 0.7
            for i in items
        )
        + 0.4
    )
    return figure_html(
        draw,
        width=6.6,
        height=height,
        figure_id="likert",
        alt="Likert rating distributions per item and arm",
        caption="Figure: distribution of each Likert item per arm (share of ratings "
        "at each level).",
    )


RELIANCE_BARS = (
    ("switch_rate", "switch rate"),
    ("agreement_after", "agreement with AI"),
    ("rair", "RAIR"),
    ("rsr", "RSR"),
    ("over_reliance", "over-reliance"),
    ("under_reliance", "under-reliance"),
)


def reliance_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    res = a.reliance.result
    if not a.reliance.ok or not res.arms:
        return ""
    arms = res.arms

    def draw(fig):
        ax = fig.add_subplot()
        width = 0.8 / len(arms)
        for i, m in enumerate(arms):
            xs, heights, lows, highs = [], [], [], []
            for j, (attr, _) in enumerate(RELIANCE_BARS):
                p = getattr(m, attr)
                if p.estimate is None:
                    continue
                xs.append(j - 0.4 + width * (i + 0.5))
                heights.append(p.estimate)
                lows.append(max(p.estimate - p.ci_low, 0.0))
                highs.append(max(p.ci_high - p.estimate, 0.0))
            ax.bar(
                xs,
                heights,
                width=width * 0.92,
                color=_colour(codes, m.arm),
                yerr=[lows, highs],
                capsize=2,
                error_kw={"lw": 0.8},
                label=a.meta.label(m.arm),
            )
        ax.set_xticks(range(len(RELIANCE_BARS)), [t for _, t in RELIANCE_BARS])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("proportion")
        ax.legend(
            frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=min(len(arms), 2)
        )

    return figure_html(
        draw,
        width=6.6,
        height=3.6,
        figure_id="reliance",
        alt="Reliance measures per arm",
        caption="Figure: reliance measures per arm with Wilson intervals (reads "
        "treated as independent; descriptive).",
    )


def metric_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    res = a.explanation_gain.result
    if not a.explanation_gain.ok or not res.correlations:
        return ""
    arms = list(dict.fromkeys(c.arm for c in res.correlations))
    names = list(dict.fromkeys(c.metric for c in res.correlations))
    by_key = {(c.arm, c.metric): c for c in res.correlations}

    def draw(fig):
        axes = fig.subplots(len(names), len(arms), squeeze=False)
        for i, name in enumerate(names):
            for j, arm in enumerate(arms):
                ax = axes[i, j]
                corr = by_key.get((arm, name))
                if corr is None or not corr.points:
                    ax.set_axis_off()
                    continue
                ax.scatter(
                    [p.value for p in corr.points],
                    [p.gain for p in corr.points],
                    s=9,
                    color=_colour(codes, arm),
                    alpha=0.75,
                    lw=0,
                )
                ax.axhline(0, color="#999999", lw=0.6, ls="--")
                rho = corr.correlation.rho
                stat = (
                    f"ρ = {rho:.2f}, p = {p_text(corr.correlation.p_value)}"
                    if rho is not None
                    else "ρ n/a"
                )
                ax.set_title(f"{short(a.meta, arm)}: {stat}", loc="left")
                ax.set_xlabel(name.replace("_", " "))
                if j == 0:
                    ax.set_ylabel("per-case accuracy gain")

    return figure_html(
        draw,
        width=min(2.4 * len(arms) + 0.6, 6.8),
        height=2.0 * len(names) + 0.3,
        figure_id="metric_gain",
        alt="Explanation metric versus per-case accuracy gain",
        caption="Figure: per-case accuracy gain over unaided reading against each "
        "explanation-quality metric, per explainer arm, with Spearman's "
        "rank correlation.",
    )


def time_figure(a: StudyAnalysis, codes: Sequence[str]) -> str:
    res = a.reading_time.result
    if res is None or not res.summaries:
        return ""
    summaries = res.summaries

    def draw(fig):
        ax = fig.add_subplot()
        stats = [
            {
                "label": short(a.meta, s.arm),
                "whislo": s.whisker_low,
                "q1": s.q1,
                "med": s.median,
                "q3": s.q3,
                "whishi": s.whisker_high,
                "fliers": [],
            }
            for s in summaries
        ]
        boxes = ax.bxp(
            stats, showfliers=False, patch_artist=True, widths=0.5, medianprops={"color": "black"}
        )
        for patch, s in zip(boxes["boxes"], summaries, strict=True):
            patch.set(facecolor=_colour(codes, s.arm), alpha=0.55)
        ax.scatter(
            range(1, len(summaries) + 1),
            [s.geometric_mean for s in summaries],
            marker="D",
            color="black",
            s=14,
            zorder=3,
            label="geometric mean",
        )
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:g}")
        ax.yaxis.set_minor_formatter(lambda v, _pos: f"{v:g}" if str(f"{v:g}")[0] in "25" else "")
        ax.set_ylabel("reading time per case (s, log scale)")
        ax.legend(frameon=False, loc="upper left")

    return figure_html(
        draw,
        width=5.2,
        height=3.2,
        figure_id="reading_time",
        alt="Reading time per arm",
        caption="Figure: reading time per case and arm (box: quartiles; whiskers: "
        "most extreme times within 1.5 IQR; diamond: geometric mean).",
    )
