"""``python manage.py mrmc FILE``: Obuchowski-Rockette analysis of a reader-study file."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from analysis.stats.covariance import COV_METHODS
from analysis.stats.data import MRMCInputError
from analysis.stats.fom import FOMS
from analysis.stats.fom_curves import partial_range
from analysis.stats.inference import ANALYSES
from analysis.stats.io import FORMATS, read_study
from analysis.stats.mrmc import or_analysis
from analysis.stats.render import render_or_text


class Command(BaseCommand):
    help = (
        "Obuchowski-Rockette MRMC analysis (Hillis ddf) of a long-format CSV "
        "(reader,treatment,case,truth,rating) or an iMRMC file: per-reader figures of merit, "
        "variance components, global and pairwise tests (Holm), single-arm CIs."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("file", help="ratings file")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="file format (default: from the extension; .imrmc is iMRMC)",
        )
        parser.add_argument(
            "--fom",
            choices=FOMS,
            default="auc",
            help="figure of merit (trapezoidal_auc is the empirical AUC; binormal_auc fits an ML "
            "binormal ROC curve per reader and treatment; partial_auc needs --pauc-range)",
        )
        parser.add_argument(
            "--pauc-range",
            nargs=2,
            type=float,
            metavar=("LOW", "HIGH"),
            help="partial_auc: the specificity (or sensitivity) range, e.g. 0.8 1",
        )
        parser.add_argument(
            "--pauc-focus",
            choices=("specificity", "sensitivity"),
            default="specificity",
            help="partial_auc: whether the range is of specificity (area under the curve) or "
            "of sensitivity (area to its right)",
        )
        parser.add_argument(
            "--pauc-boundary",
            choices=("mrmcaov", "proc"),
            default="mrmcaov",
            help="partial_auc: where a range end falls on a vertical step of an empirical curve, "
            "take it as MRMCaov does (default) or as pROC does (the curve's geometric area)",
        )
        parser.add_argument(
            "--pauc-standardized",
            action="store_true",
            help="partial_auc: McClish-standardized (0.5 chance, 1 perfect)",
        )
        parser.add_argument(
            "--threshold",
            type=float,
            help="binary figures of merit: rating >= threshold is positive "
            "(default: the file's diagnosis column)",
        )
        parser.add_argument(
            "--cov",
            choices=COV_METHODS,
            default="jackknife",
            help="case-sampling covariance estimator",
        )
        parser.add_argument("--analysis", choices=[*ANALYSES, "all"], default="all")
        parser.add_argument(
            "--json",
            dest="json_out",
            metavar="OUT",
            help="also write every number to this JSON file",
        )
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
        parser.add_argument("--bootstrap-samples", type=int, default=2000)
        parser.add_argument(
            "--case-column",
            default="case",
            help="CSV column identifying cases (e.g. case2 for split-plot codes)",
        )
        parser.add_argument("--conf-level", type=float, default=0.95)

    def _partial(self, options):
        if options["fom"] != "partial_auc":
            if options["pauc_range"] or options["pauc_standardized"]:
                raise CommandError("--pauc-range and --pauc-standardized need --fom partial_auc")
            return None
        if not options["pauc_range"]:
            raise CommandError("--fom partial_auc needs --pauc-range LOW HIGH, e.g. 0.8 1")
        return partial_range(
            options["pauc_range"],
            options["pauc_focus"],
            options["pauc_standardized"],
            options["pauc_boundary"],
        )

    def handle(self, *args, **options):
        try:
            partial = self._partial(options)
            data = read_study(options["file"], options["format"], options["case_column"])
            result = or_analysis(
                data,
                options["fom"],
                options["cov"],
                analyses=options["analysis"],
                threshold=options["threshold"],
                conf_level=options["conf_level"],
                bootstrap_samples=options["bootstrap_samples"],
                seed=options["seed"],
                partial=partial,
            )
        except MRMCInputError as exc:
            raise CommandError("\n".join(exc.problems)) from None
        self.stdout.write(render_or_text(result), ending="")
        if options["json_out"]:
            out = Path(options["json_out"])
            try:
                out.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {out}: {exc.strerror}") from None
            self.stdout.write(f"JSON written to {out}\n", ending="")
