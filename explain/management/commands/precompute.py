from __future__ import annotations

import json
import time

from core.commands import ProblemCommand
from explain import selectors, services
from explain.models import ClassifierModel
from library.models import Collection


class Command(ProblemCommand):
    help = (
        "Precompute predictions and explanations for a model and a collection on the Celery workers "
        "(inline when no broker is configured). With --wait, show progress until the job ends."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="registered model name")
        parser.add_argument("--collection", required=True)
        parser.add_argument(
            "--explainers", required=True, help="comma separated, e.g. gradcam,ig,occlusion"
        )
        parser.add_argument(
            "--placebo", default="", help="explainers to also run on a weight-randomized model"
        )
        parser.add_argument(
            "--params", default="{}", help='per explainer, JSON: {"occlusion": {"window": 12}}'
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--split", help="only cases of this split (e.g. test)")
        parser.add_argument("--force", action="store_true", help="recompute results that exist")
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument(
            "--no-metrics", action="store_true", help="skip explanation-quality metrics"
        )
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--user", help="username recorded in the audit trail")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        problems = []
        model = ClassifierModel.objects.filter(name=options["model"]).first()
        if model is None:
            problems.append(f"--model {options['model']!r}: no such registered model")
        collection = Collection.objects.filter(name=options["collection"]).first()
        if collection is None:
            problems.append(f"--collection {options['collection']!r}: no such collection")
        try:
            params = json.loads(options["params"])
            if not isinstance(params, dict):
                raise ValueError
        except ValueError:
            problems.append("--params must be a JSON object keyed by explainer")
            params = {}
        if problems:
            self.fail(problems)
        names = [n.strip() for n in options["explainers"].split(",") if n.strip()]
        if names == ["all"]:
            names = model.supported_explainers
        explainers = [
            {"explainer": n, "params": params.get(n.strip(), {}), "seed": options["seed"]}
            for n in names
        ]
        placebo = [n for n in options["placebo"].split(",") if n.strip()]
        job = services.precompute_start(
            acting_user=self.acting_user(options["user"]),
            model=model,
            collection=collection,
            explainers=explainers,
            placebo=placebo,
            split=options["split"],
            force=options["force"],
            batch_size=options["batch_size"],
            with_metrics=not options["no_metrics"],
        )
        self.stdout.write(f"job {job.pk}: {len(job.configs)} configuration(s) on {collection.name}")
        if options["wait"]:
            self._wait(job, quiet=options["no_progress"])
        progress = selectors.precompute_progress(job=job)
        self.stdout.write(
            f"job {job.pk} {progress['status']}: {progress['done']} done, {progress['failed']} failed, "
            f"{progress['pending'] + progress['running']} open of {progress['total']}"
        )
        if progress["failed"]:
            self.fail(
                [
                    f"failed: case {row['case']} {row['config']}: {row['error']}"
                    for row in progress["failures"]
                ],
                summary=f"{progress['failed']} item(s) failed",
            )

    def _wait(self, job, *, quiet: bool) -> None:
        progress = selectors.precompute_progress(job=job)
        bar = self.progress_bar(total=progress["total"], desc="precomputing", enabled=not quiet)
        bar.unit = "item"
        seen = 0
        while True:
            progress = selectors.precompute_progress(job=job)
            finished = progress["done"] + progress["failed"] + progress["cancelled"]
            bar.update(finished - seen)
            seen = finished
            if progress["status"] != "running":
                break
            time.sleep(0.5)
        bar.close()
