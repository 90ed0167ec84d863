from __future__ import annotations

from pathlib import Path

from core.commands import ProblemCommand
from demo.synthetic import DemoDatasetError, generate_demo_dataset


class Command(ProblemCommand):
    help = (
        "Generate the synthetic chest-radiograph demo dataset as real DICOM files (with fake "
        "identifying data that import strips), labels.csv and lesion masks. Deterministic for a seed."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path, metavar="OUT")
        parser.add_argument("--cases", type=int, default=240)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--overwrite", action="store_true", help="replace a demo dataset already in OUT"
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        bar = self.progress_bar(
            total=options["cases"], desc="generating", enabled=not options["no_progress"]
        )
        try:
            summary = generate_demo_dataset(
                options["out"],
                cases=options["cases"],
                seed=options["seed"],
                overwrite=options["overwrite"],
                progress=lambda done, total: bar.update(1),
            )
        except DemoDatasetError as exc:
            self.fail([str(exc)])
        finally:
            bar.close()
        self.stdout.write(
            f"{summary.cases} cases ({summary.positives} with nodules, {summary.negatives} normal; "
            f"{summary.train} train / {summary.test} test) written to {summary.out_dir} "
            f"in {summary.seconds:.1f} s"
        )
