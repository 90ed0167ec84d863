from __future__ import annotations

import json
from pathlib import Path

from core.commands import ProblemCommand
from library import services


class Command(ProblemCommand):
    help = (
        "Import DICOM, PNG and JPEG cases from files, folders and zip archives into a collection "
        "(created if it does not exist). Exits 1 if any file was rejected, listing each with its reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        parser.add_argument("--collection", required=True, help="collection name")
        parser.add_argument(
            "--labels", type=Path, help="labels CSV (generic, ChestX-ray14 or CheXpert)"
        )
        parser.add_argument("--masks", type=Path, help="folder holding lesion masks (PNG or NPY)")
        parser.add_argument("--user", help="username recorded in the audit trail")
        parser.add_argument("--json", type=Path, help="also write the import report as JSON")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, **options):
        user = self.acting_user(options["user"])
        if options["masks"] is not None and not options["masks"].is_dir():
            self.fail([f"{options['masks']}: no such masks folder"])
        bar = None

        def progress(done: int, total: int, name: str) -> None:
            nonlocal bar
            if bar is None:
                bar = self.progress_bar(
                    total=total, desc="importing", enabled=not options["no_progress"]
                )
            bar.update(1)

        try:
            report = services.cases_import(
                acting_user=user,
                collection=options["collection"],
                paths=options["paths"],
                labels_path=options["labels"],
                masks_dir=options["masks"],
                progress=progress,
            )
        finally:
            if bar is not None:
                bar.close()
        if options["json"]:
            options["json"].write_text(json.dumps(report.to_dict(), indent=2))
        self.stdout.write(
            f"{report.collection}: {len(report.imported)} imported, {len(report.skipped)} already present, "
            f"{len(report.rejected)} rejected"
            + (f" (labels: {report.labels_format})" if report.labels_format else "")
        )
        if report.rejected:
            self.fail(
                [f"rejected {name}: {reason} [{code}]" for name, code, reason in report.rejected],
                summary=f"{len(report.rejected)} file(s) rejected",
            )
