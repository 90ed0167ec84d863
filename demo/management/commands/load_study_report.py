import json

from core.commands import ProblemCommand
from demo import loadtest
from studies.models import Study


class Command(ProblemCommand):
    help = (
        "Print, as JSON, what the readers of a study stored: each trial's state and responses "
        "(stage, client key, answers, trial.answer audit rows). bench/load_readers.py compares "
        "it with what its readers sent."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", type=int, help="the study's id")

    def handle(self, *args, **options):
        study = Study.objects.filter(pk=options["study"]).first()
        if study is None:
            self.fail([f"no study with id {options['study']}"])
        self.stdout.write(json.dumps(loadtest.load_study_report(study=study)))
