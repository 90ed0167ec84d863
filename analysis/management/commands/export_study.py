"""``python manage.py export_study STUDY_ID --format imrmc|mrmcaov|rjafroc [--output FILE]``:
a closed study's ratings for iMRMC (Java), MRMCaov or RJafroc (R)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from analysis.export import INTEROP_FORMATS, interop_export
from core.commands import ProblemCommand
from studies.models import Study


class Command(ProblemCommand):
    help = (
        "Write a closed study's ratings (final confidence; arms as modalities, pseudonymous "
        "readers) in iMRMC's input format, MRMCaov's long CSV or RJafroc's Excel workbook. "
        "The export is recorded in the study's audit trail."
    )

    def add_arguments(self, parser):
        parser.add_argument("study_id", help="the study's id")
        parser.add_argument(
            "--format",
            dest="fmt",
            required=True,
            help="; ".join(f"{name}: {what}" for name, (_, _, what) in INTEROP_FORMATS.items()),
        )
        parser.add_argument(
            "--output",
            type=Path,
            help="file to write (replaced atomically); default: standard output (not rjafroc)",
        )
        parser.add_argument("--user", help="username recorded in the audit trail")

    def handle(self, *args, **options):
        user = self.acting_user(options["user"])
        study, problems = self._check(options)
        if problems:
            self.fail(problems, summary=f"{len(problems)} problem(s); nothing was written")
        try:
            content, _, _ = interop_export(acting_user=user, study=study, fmt=options["fmt"])
        except PermissionError:
            self.fail([f"--user {options['user']}: may not export study {study.pk}"])
        output = options["output"]
        if output is None:
            self.stdout.write(content.decode(), ending="")
            return
        try:
            _write_atomically(output, content)
        except OSError as exc:
            self.fail([f"cannot write {output}: {exc.strerror or exc}"])
        self.stderr.write(f"study {study.pk} ({options['fmt']}) written to {output}")

    def _check(self, options) -> tuple[Study | None, list[str]]:
        """The study and every problem with the arguments, one line each."""
        problems = []
        fmt, output = options["fmt"], options["output"]
        if fmt not in INTEROP_FORMATS:
            problems.append(f"--format {fmt!r}: choose one of {', '.join(INTEROP_FORMATS)}")
        elif fmt == "rjafroc" and output is None:
            problems.append("--format rjafroc writes an Excel workbook: give --output FILE.xlsx")
        if output is not None and not output.parent.resolve().is_dir():
            problems.append(f"--output {output}: folder {output.parent} does not exist")
        if output is not None and output.is_dir():
            problems.append(f"--output {output}: is a folder, not a file")
        study = None
        try:
            study = Study.objects.select_related("model").get(pk=int(options["study_id"]))
        except (ValueError, Study.DoesNotExist):
            problems.append(f"study {options['study_id']!r}: no such study")
        else:
            if study.status != Study.Status.CLOSED:
                problems.append(
                    f"study {study.pk} is {study.get_status_display()}; "
                    "close it before exporting its ratings"
                )
        return study, problems


def _write_atomically(path: Path, content: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it 0600; give it a plain file's mode
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
