from __future__ import annotations

import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import transaction

from core.commands import ProblemCommand
from core.permissions import COORDINATORS_GROUP
from demo import setup as demo
from explain import services
from explain.models import ClassifierModel, PrecomputeJob
from library.models import Collection

DEMO_ACCOUNTS = [
    # username, password, role
    ("admin", "demo-admin", "site admin"),
    ("coordinator", "demo-coordinator", "coordinator"),
    ("reader1", "demo-reader1", "reader"),
    ("reader2", "demo-reader2", "reader"),
    ("reader3", "demo-reader3", "reader"),
    ("statistician", "demo-statistician", "statistician"),
]


class Command(ProblemCommand):
    help = (
        "Build (once, cached under var/demo) and load the demo: synthetic DICOM cases, the trained "
        "demo model in eager and TorchScript form, and demo accounts. Development only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cases", type=int, default=240)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--epochs", type=int, default=None, help="training epochs (default: the trainer's)"
        )
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--no-background",
            action="store_true",
            help="skip the background precompute of all explainers",
        )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            self.fail(
                [
                    "demo_setup refuses to run with DJANGO_ENV=production (it creates known passwords)"
                ]
            )
        started = time.perf_counter()
        cases, seed, quiet = options["cases"], options["seed"], options["no_progress"]
        paths = demo.demo_paths(settings.VAR_DIR, cases=cases, seed=seed, epochs=options["epochs"])
        progress_flag = ["--no-progress"] if quiet else []

        if demo.build_cached(
            paths.data,
            lambda out: call_command(
                "make_demo_data",
                str(out),
                cases=cases,
                seed=seed,
                overwrite=True,
                no_progress=quiet,
                stdout=self.stdout,
                stderr=self.stderr,
            ),
        ):
            self.stdout.write(f"demo data generated in {paths.data}")
        else:
            self.stdout.write(f"demo data: cached in {paths.data}")

        if demo.build_cached(
            paths.model,
            lambda out: call_command(
                "train_demo_model",
                "--data",
                str(paths.data),
                "--out",
                str(out),
                "--seed",
                str(seed),
                *(["--epochs", str(options["epochs"])] if options["epochs"] else []),
                *progress_flag,
                stdout=self.stdout,
                stderr=self.stderr,
            ),
        ):
            self.stdout.write(f"demo model trained into {paths.model}")
        else:
            self.stdout.write(f"demo model: cached in {paths.model}")
        metrics = demo.read_metrics(paths)

        admin = self._accounts()
        collection = Collection.objects.filter(name=demo.DEMO_COLLECTION).first()
        if collection is None or not collection.cases.exists():
            call_command(
                "import_cases",
                str(paths.data / "images"),
                collection=demo.DEMO_COLLECTION,
                labels=str(paths.data / "labels.csv"),
                user=admin.username,
                no_progress=quiet,
                stdout=self.stdout,
                stderr=self.stderr,
            )
        else:
            self.stdout.write(
                f"collection {demo.DEMO_COLLECTION!r}: already loaded ({collection.cases.count()} cases)"
            )
        self._register_models(paths, metrics, admin)
        self._precompute(admin, quiet, background=not options["no_background"])

        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(f"Demo ready in {time.perf_counter() - started:.1f} s.")
        )
        self.stdout.write(
            f"Demo model held-out AUC: {metrics['test_auc']:.3f} (trained in {metrics['train_seconds']:.0f} s)"
        )
        self.stdout.write(f"Open {settings.SITE_URL}/ and log in as:")
        for username, password, role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {role:<12} {username:<12} password: {password}")

    def _precompute(self, admin, quiet: bool, *, background: bool) -> None:
        """Fast explainers now, so the first visit works; everything else (with
        quality metrics) in a background process whose progress the job page shows."""
        common = {
            "model": demo.DEMO_MODEL,
            "collection": demo.DEMO_COLLECTION,
            "split": "test",
            "user": admin.username,
        }
        call_command(
            "precompute",
            explainers=",".join(demo.FAST_EXPLAINERS),
            placebo="gradcam",
            no_metrics=True,
            wait=True,
            no_progress=quiet,
            stdout=self.stdout,
            stderr=self.stderr,
            **common,
        )
        if not background:
            return
        background_jobs = PrecomputeJob.objects.filter(
            model__name=demo.DEMO_MODEL, with_metrics=True
        )
        if background_jobs.filter(status=PrecomputeJob.Status.DONE).exists():
            self.stdout.write("background precompute: complete")
            return
        # A background process stopped with the last demo leaves its job running: cancel it and
        # start again; results already stored (with their metrics) are skipped, so work resumes.
        for job in background_jobs.filter(status=PrecomputeJob.Status.RUNNING):
            services.precompute_cancel(acting_user=admin, job=job)
        log = settings.VAR_DIR / "demo" / "precompute.log"
        command = [
            sys.executable,
            "manage.py",
            "precompute",
            "--model",
            demo.DEMO_MODEL,
            "--collection",
            demo.DEMO_COLLECTION,
            "--split",
            "test",
            "--explainers",
            "all",
            "--placebo",
            "gradcam",
            "--no-progress",
            "--user",
            admin.username,
        ]
        with log.open("ab") as handle:
            subprocess.Popen(  # noqa: S603
                command, cwd=settings.BASE_DIR, stdout=handle, stderr=subprocess.STDOUT
            )
        self.stdout.write(
            "background precompute of every explainer with quality metrics started; progress on "
            f"{settings.SITE_URL}/library/precompute/ (log: {log})"
        )

    def _accounts(self) -> User:
        coordinators, _ = Group.objects.get_or_create(name=COORDINATORS_GROUP)
        with transaction.atomic():
            for username, password, role in DEMO_ACCOUNTS:
                user, created = User.objects.get_or_create(username=username)
                if created:
                    user.set_password(password)
                    user.email = f"{username}@demo.invalid"
                    user.is_staff = user.is_superuser = role == "site admin"
                    user.save()
                if role == "coordinator":
                    user.groups.add(coordinators)
        return User.objects.get(username="admin")

    def _register_models(self, paths, metrics, admin) -> None:
        common = {
            "classes": ",".join(metrics["class_labels"]),
            "positive_class": metrics["class_labels"][-1],
            "input_size": metrics["input_spec"]["size"],
            "channels": metrics["input_spec"]["channels"],
            "mean": ",".join(str(v) for v in metrics["input_spec"]["mean"]),
            "std": ",".join(str(v) for v in metrics["input_spec"]["std"]),
            "user": admin.username,
        }
        description = f"Demo attention ResNet, held-out AUC {metrics['test_auc']:.3f}"
        if not ClassifierModel.objects.filter(name=demo.DEMO_MODEL).exists():
            call_command(
                "register_model",
                name=demo.DEMO_MODEL,
                architecture=metrics["architecture"],
                weights=str(paths.weights),
                init_kwargs=__import__("json").dumps(metrics["init_kwargs"]),
                cam_layer=metrics["cam_layer"],
                description=description,
                stdout=self.stdout,
                **common,
            )
        if not ClassifierModel.objects.filter(name=demo.DEMO_MODEL_TORCHSCRIPT).exists():
            call_command(
                "register_model",
                name=demo.DEMO_MODEL_TORCHSCRIPT,
                torchscript=str(paths.torchscript),
                description=description + " (TorchScript export)",
                stdout=self.stdout,
                **common,
            )
