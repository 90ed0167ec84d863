"""``python manage.py power``: power and sample size of a future MRMC study of t >= 2 arms.

The pilot is a ratings file (its OR analysis, jackknife covariance), a study of this site (its
AUC OR analysis, as its report runs it) or assumed variance components; the effect is the assumed
arm AUCs (default: the pilot's observed ones) or a two-arm AUC difference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analysis.forms_power import COMPONENT_FIELDS
from analysis.selectors import study_pilot
from analysis.stats.data import MRMCInputError
from analysis.stats.inference import to_jsonable
from analysis.stats.io import FORMATS, read_study
from analysis.stats.mrmc import or_analysis
from analysis.stats.power import POWER_ANALYSES, PowerPlan, assumed_components, plan
from analysis.stats.render import table
from studies.models import Study

TITLES = {"rrrc": "RRRC", "frrc": "FRRC", "rrfc": "RRFC"}


def _parse(values, kind, option: str, problems: list[str]) -> list:
    out = []
    for value in values or ():
        try:
            number = kind(value)
        except ValueError:
            problems.append(
                f"{option}: {value!r} is not {'a whole' if kind is int else 'a'} number"
            )
            continue
        if isinstance(number, float) and not math.isfinite(number):
            problems.append(f"{option}: {value!r} is not a finite number")
            continue
        out.append(number)
    return out


def _one(value, kind, option: str, problems: list[str]):
    parsed = _parse([value] if value is not None else [], kind, option, problems)
    return parsed[0] if parsed else None


class Command(BaseCommand):
    help = (
        "Power and sample size of a future MRMC study of two or more arms (Hillis, Obuchowski & "
        "Berbaum 2011) from a pilot file, a study or assumed OR variance components: a power "
        "table for --readers x --cases, or with --target-power the cases needed per reader count "
        "and the readers needed per case count."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        pilot = parser.add_argument_group("pilot (one of)")
        pilot.add_argument("--pilot-csv", metavar="FILE", help="ratings file, as mrmc reads it")
        pilot.add_argument("--format", help=f"pilot file format: {', '.join(FORMATS)}")
        pilot.add_argument("--case-column", default="case", help="CSV column naming cases")
        pilot.add_argument("--pilot-study", metavar="ID", help="a study's AUC OR analysis")
        for name in COMPONENT_FIELDS:
            pilot.add_argument(
                f"--{name.replace('_', '-')}",
                metavar="N" if name == "pilot_cases" else "X",
                help="cases per reader and arm behind the components"
                if name == "pilot_cases"
                else "assumed OR variance component",
            )
        parser.add_argument(
            "--aucs", nargs="+", metavar="AUC", help="assumed arm AUCs (default: the pilot's)"
        )
        parser.add_argument("--effect", metavar="D", help="two arms: assumed AUC difference")
        parser.add_argument("--readers", nargs="+", metavar="N", default=[])
        parser.add_argument("--cases", nargs="+", metavar="N", default=[])
        parser.add_argument("--target-power", metavar="P", help="e.g. 0.8")
        parser.add_argument("--analysis", default="all", help="rrrc, frrc, rrfc or all")
        parser.add_argument("--alpha", default="0.05")
        parser.add_argument("--json", dest="json_out", metavar="OUT", help="also write JSON")

    def _pilot(self, options, problems: list[str]):
        """(variance components or OR result, what it is, its observed arm AUCs)."""
        given = [o for o in ("pilot_csv", "pilot_study") if options[o]]
        parts = {n: options[n] for n in COMPONENT_FIELDS if options[n] is not None}
        if len(given) + bool(parts) != 1:
            problems.append(
                "give one pilot: --pilot-csv FILE, --pilot-study ID, or the assumed components "
                "--var-tr --var-error --cov1 --cov2 --cov3 --pilot-cases"
            )
            return None, "", []
        if options["pilot_csv"]:
            try:
                data = read_study(options["pilot_csv"], options["format"], options["case_column"])
                result = or_analysis(data, analyses=("rrrc",))
            except MRMCInputError as exc:
                problems.extend(exc.problems)
                return None, "", []
            return result, f"OR analysis of {options['pilot_csv']}", _observed(result)
        if options["pilot_study"]:
            return self._study_pilot(options["pilot_study"], problems)
        values = {
            n: _one(parts.get(n), float, f"--{n.replace('_', '-')}", problems)
            for n in COMPONENT_FIELDS
        }
        missing = [f"--{n.replace('_', '-')}" for n in COMPONENT_FIELDS if n not in parts]
        if missing:
            problems.append(f"assumed components: missing {' '.join(missing)}")
        if None in values.values():
            return None, "", []
        if values["pilot_cases"] < 1:
            problems.append("--pilot-cases must be at least 1")
            return None, "", []
        return assumed_components(**values), "assumed variance components", []

    def _study_pilot(self, study_id: str, problems: list[str]):
        pk = _one(study_id, int, "--pilot-study", problems)
        study = Study.objects.filter(pk=pk).first() if pk is not None else None
        if pk is not None and study is None:
            problems.append(f"--pilot-study: no study {pk}")
        if study is None:
            return None, "", []
        pilot = study_pilot(study=study)
        if pilot.result is None:
            problems.append(f"study {pk} cannot be the pilot: {pilot.reason}")
            return None, "", []
        what = f"study {pk} ({study.get_status_display().lower()}): AUC OR analysis"
        return pilot.result, what, _observed(pilot.result)

    def _inputs(self, options) -> tuple[dict, str, list[tuple[str, float]]]:
        problems: list[str] = []
        pilot, what, observed = self._pilot(options, problems)
        aucs = _parse(options["aucs"], float, "--aucs", problems)
        effect = _one(options["effect"], float, "--effect", problems)
        if options["aucs"] and options["effect"] is not None:
            problems.append("give --aucs or --effect, not both")
        elif effect is not None:
            aucs = [0.0, effect]
        elif not options["aucs"] and not (options["pilot_csv"] or options["pilot_study"]):
            problems.append("give the assumed arm AUCs (--aucs A B ...) or --effect D")
        elif not options["aucs"]:
            aucs = [auc for _, auc in observed]
        analysis = options["analysis"]
        if analysis not in (*POWER_ANALYSES, "all"):
            problems.append(f"--analysis: {analysis!r} is not one of rrrc, frrc, rrfc, all")
        inputs = {
            "aucs": aucs,
            "readers": _parse(options["readers"], int, "--readers", problems),
            "cases": _parse(options["cases"], int, "--cases", problems),
            "target": _one(options["target_power"], float, "--target-power", problems),
            "alpha": _one(options["alpha"], float, "--alpha", problems),
            "analyses": POWER_ANALYSES if analysis == "all" else (analysis,),
        }
        problems.extend(_range_problems(inputs, effect=effect))
        if inputs["target"] is None and not (options["readers"] and options["cases"]):
            problems.append("give --readers N... and --cases N... (or --target-power P)")
        elif not (options["readers"] or options["cases"]):
            problems.append("--target-power needs --readers N... or --cases N...")
        if problems:
            raise CommandError("\n".join(problems))
        return {"pilot": pilot, **inputs}, what, observed

    def handle(self, *args, **options):
        inputs, what, observed = self._inputs(options)
        try:
            result = plan(inputs.pop("pilot"), inputs.pop("aucs"), **inputs)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        effect = options["effect"] is not None
        self.stdout.write(render_plan(result, what, observed, effect=effect), ending="")
        if options["json_out"]:
            out = Path(options["json_out"])
            data = {"pilot": what, "observed_aucs": dict(observed), **result.to_dict()}
            if effect:
                data.update(aucs=None, effect=result.aucs[1] - result.aucs[0])
            try:
                text = json.dumps(to_jsonable(data), indent=2, allow_nan=False)
                out.write_text(text + "\n", encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {out}: {exc.strerror}") from None
            self.stdout.write(f"JSON written to {out}\n", ending="")


def _range_problems(inputs: dict, *, effect: float | None) -> list[str]:
    problems = [
        f"--{name}: {value} is below 2"
        for name in ("readers", "cases")
        for value in inputs[name]
        if value < 2
    ]
    alpha, target, aucs = inputs["alpha"], inputs["target"], inputs["aucs"]
    if alpha is not None and not 0 < alpha < 1:
        problems.append(f"--alpha: {alpha} is not between 0 and 1")
    if target is not None and not (alpha or 0) < target < 1:
        problems.append(f"--target-power: {target} is not between alpha and 1")
    if effect is not None and not -1 <= effect <= 1:
        problems.append(f"--effect: {effect} is not an AUC difference (from -1 to 1)")
    elif effect is None and any(not 0 <= a <= 1 for a in aucs):
        problems.append("--aucs: each AUC must be from 0 to 1")
    if len(aucs) == 1:
        problems.append("--aucs: give the AUC of at least 2 arms")
    return problems


def _observed(result) -> list[tuple[str, float]]:
    return list(zip(result.treatments, map(float, result.arm_means), strict=True))


def _pct(p: float) -> str:
    return f"{p:.3f}"


def render_plan(result: PowerPlan, what: str, observed, *, effect: bool = False) -> str:
    c = result.components
    lines = [
        f"Pilot: {what}",
        "  Var(T*R) = {var_tr:.6g}, Var(error) = {var_error:.6g}, Cov1 = {cov1:.6g}, "
        "Cov2 = {cov2:.6g}, Cov3 = {cov3:.6g}, cases per reader and arm = {n_cases:g}".format(**c),
    ]
    if observed:
        lines.append("  Observed arm AUCs: " + ", ".join(f"{t} {a:.4f}" for t, a in observed))
    assumed = (
        f"AUC difference {result.aucs[1] - result.aucs[0]:.4f}"
        if effect
        else "arm AUCs " + ", ".join(f"{a:.4f}" for a in result.aucs)
    )
    lines.append(f"Assumed: {assumed}; alpha = {result.alpha:g}; t = {len(result.aucs)} arms")
    if result.table:
        lines.append("\nPower")
        rows = [
            [
                TITLES[r.analysis],
                r.n_readers,
                r.n_cases,
                _pct(r.power),
                f"{r.noncentrality:.3f}",
                f"{r.df1}",
                "inf" if math.isinf(r.df2) else f"{r.df2:.2f}",
            ]
            for r in result.table
        ]
        header = ["analysis", "readers", "cases", "power", "ncp", "df1", "ddf"]
        lines.append(table(header, rows))
    for needed, title in ((result.cases_needed, "Cases"), (result.readers_needed, "Readers")):
        if not needed:
            continue
        lines.append(f"\n{title} for power {result.target:g}")
        rows = [
            [TITLES[n.analysis], n.result.n_readers, n.result.n_cases, _pct(n.result.power)]
            if n.result
            else [TITLES[n.analysis], *_blank(n), "-", n.problem]
            for n in needed
        ]
        header = ["analysis", "readers", "cases", "power"]
        if any(n.result is None for n in needed):
            header.append("note")
        lines.append(table(header, _pad(rows)))
    return "\n".join(lines) + "\n"


def _blank(n) -> list:
    return [n.n_given, "-"] if n.given == "readers" else ["-", n.n_given]


def _pad(rows: list[list]) -> list[list]:
    """Rows with a problem carry a fifth cell; the table gets a 'note' column then."""
    width = max(len(r) for r in rows)
    return [[*r, *([""] * (width - len(r)))] for r in rows]
