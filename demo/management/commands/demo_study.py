from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from core.commands import ProblemCommand
from demo import setup as explain_demo
from demo import study as demo
from explain.models import ClassifierModel
from library.models import Collection


class Command(ProblemCommand):
    help = (
        "Create, precompute and open the demo study on the demo collection (run demo_setup first). "
        "Development only; safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--coordinator", default="coordinator", help="username of the demo coordinator"
        )
        parser.add_argument("--main-cases", type=int, default=demo.DEMO_MAIN_CASES)
        parser.add_argument("--training-cases", type=int, default=2)
        parser.add_argument("--attention-cases", type=int, default=2)
        parser.add_argument(
            "--simulated-readers",
            type=int,
            default=demo.SIMULATED_READERS,
            help="readers of the second, simulated demo study (0: do not build it)",
        )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            self.fail(["demo_study refuses to run with DJANGO_ENV=production"])
        problems = []
        coordinator = get_user_model().objects.filter(username=options["coordinator"]).first()
        model = ClassifierModel.objects.filter(name=explain_demo.DEMO_MODEL).first()
        collection = Collection.objects.filter(name=explain_demo.DEMO_COLLECTION).first()
        if coordinator is None:
            problems.append(
                f"--coordinator {options['coordinator']!r}: no such user (run demo_setup first)"
            )
        if model is None or collection is None:
            problems.append("the demo model and collection are not loaded (run demo_setup first)")
        if problems:
            self.fail(problems)
        study = demo.demo_study_build(
            coordinator=coordinator,
            model=model,
            collection=collection,
            main_cases=options["main_cases"],
            training_cases=options["training_cases"],
            attention_cases=options["attention_cases"],
            progress=self.stdout.write,
        )
        self.stdout.write(
            self.style.SUCCESS(f"Demo study '{study.title}' is {study.status}")
            + f": coordinate it at {settings.SITE_URL}/studies/{study.pk}/"
        )
        if options["simulated_readers"] > 0:
            simulated = demo.demo_simulated_study_build(
                coordinator=coordinator,
                model=model,
                collection=collection,
                main_cases=options["main_cases"],
                readers=options["simulated_readers"],
                progress=self.stdout.write,
            )
            self.stdout.write(
                f"Simulated demo study '{simulated.title}' is {simulated.status}: "
                f"{settings.SITE_URL}/studies/{simulated.pk}/"
            )
