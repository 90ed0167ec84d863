from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from analysis import selectors, services
from analysis.models import StudyReport
from core.commands import ProblemCommand
from demo.study import SIMULATED_TITLE
from studies.models import Study


class Command(ProblemCommand):
    help = "Build the report of the simulated demo study (run demo_study first). Development only."

    def add_arguments(self, parser):
        parser.add_argument("--coordinator", default="coordinator")

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            self.fail(["demo_report refuses to run with DJANGO_ENV=production"])
        study = (
            Study.objects.filter(title=SIMULATED_TITLE, status=Study.Status.CLOSED)
            .order_by("-pk")
            .first()
        )
        coordinator = get_user_model().objects.filter(username=options["coordinator"]).first()
        if study is None or coordinator is None:
            self.fail(
                ["the simulated demo study is not there (run demo_setup and demo_study first)"]
            )
        reports = selectors.report_list(study=study, user=coordinator)
        report = reports.filter(status=StudyReport.Status.DONE).first()
        if report is None:
            self.stdout.write("demo report: building (statistics, figures, PDF)…")
            report = services.report_request(acting_user=coordinator, study=study)
            report.refresh_from_db()
        if report.status == StudyReport.Status.FAILED:
            self.fail([f"the demo report failed: {report.error}"])
        self.stdout.write(
            self.style.SUCCESS(f"Demo report ({report.get_status_display()}): ")
            + f"{settings.SITE_URL}/studies/{study.pk}/reports/"
        )
