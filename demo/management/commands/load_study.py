import json

from django.conf import settings

from core.commands import ProblemCommand
from demo import loadtest
from studies.models import Study


class Command(ProblemCommand):
    help = (
        "Create, precompute and open a new load-test study with READERS readers who all have the "
        "password given, for bench/load_readers.py. Prints one JSON line: the study's id, its title "
        "and the readers' usernames. With a broker configured the precompute runs on the Celery "
        "workers (start one); otherwise in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--readers", type=int, default=50)
        parser.add_argument(
            "--cases-per-reader", type=int, default=4, help="main cases each reader reads"
        )
        parser.add_argument(
            "--password", required=True, help="every reader's password (at least 8 characters)"
        )
        parser.add_argument(
            "--prefix", default="load-reader", help="readers are named PREFIX-STUDY-NNN"
        )
        parser.add_argument(
            "--protocol", choices=Study.Protocol.values, default=Study.Protocol.TWO_STAGE
        )
        parser.add_argument("--precompute-timeout", type=float, default=600.0, help="seconds")
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="run with DJANGO_ENV=production (it creates accounts with a known password: "
            "only on a throwaway database)",
        )

    def handle(self, *args, **options):
        if settings.PRODUCTION and not options["allow_production"]:
            self.fail(
                [
                    "load_study creates accounts with a known password; with DJANGO_ENV=production "
                    "pass --allow-production (on a throwaway database only)"
                ]
            )
        study, readers = loadtest.load_study_build(
            readers=options["readers"],
            cases_per_reader=options["cases_per_reader"],
            password=options["password"],
            prefix=options["prefix"],
            protocol=options["protocol"],
            precompute_timeout=options["precompute_timeout"],
            progress=self.stderr.write,
        )
        self.stdout.write(json.dumps({"study": study.pk, "title": study.title, "readers": readers}))
