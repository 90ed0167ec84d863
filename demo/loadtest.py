"""The load-test study (bench/load_readers.py): a real, open two-stage study with many readers
whose passwords the load script knows, and the report that checks what they stored.

Built through the same services a coordinator uses: the synthetic demo images are imported
with `cases_import`, a randomly initialised demo architecture is registered with
`model_register` (the load test measures the platform, not the model), predictions and
heatmaps are computed by `study_precompute` (by the Celery workers when a broker is
configured, in this process otherwise), and `study_open` enrolls the readers. Each build makes
a new study with new readers, so runs never see each other's answers.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db.models import Count
from django.utils import timezone

from core.errors import ServiceError
from core.models import AuditEntry
from core.permissions import COORDINATORS_GROUP
from demo.synthetic import MIN_CASES, generate_demo_dataset
from explain import services as explain_services
from explain.compute.models import AttentionResNet
from explain.models import ClassifierModel, PrecomputeJob
from explain.selectors import precompute_progress
from library import services as library_services
from library.models import Collection
from studies import services
from studies.models import Response, Study, Trial

LOAD_COORDINATOR = "load-coordinator"
LOAD_MODEL = "load-test-net"
LOAD_SEED = 23
# Unaided, AI alone, AI + Grad-CAM and a placebo Grad-CAM: one-stage and two-stage trials,
# with and without a heatmap to fetch.
LOAD_ARMS = (("unaided", ""), ("ai", ""), ("ai_explainer", "gradcam"), ("placebo", "gradcam"))
INPUT_SPEC = {"size": [64, 64], "channels": 1, "mean": [0.5], "std": [0.25]}


def _coordinator():
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=LOAD_COORDINATOR, defaults={"email": "load-coordinator@example.org"}
    )
    if created:
        user.set_unusable_password()
        user.save()
    user.groups.add(Group.objects.get_or_create(name=COORDINATORS_GROUP)[0])
    return user


def _collection(coordinator, cases: int, progress) -> Collection:
    cases = max(cases, MIN_CASES)
    name = f"load-test-{cases}"
    existing = Collection.objects.filter(name=name).first()
    if existing is not None and existing.cases.count() >= cases:
        return existing
    progress(f"load study: importing {cases} synthetic cases into collection {name!r}")
    with tempfile.TemporaryDirectory(prefix="xrs-load-") as folder:
        data = Path(folder)
        generate_demo_dataset(data, cases=cases, seed=LOAD_SEED, overwrite=True)
        report = library_services.cases_import(
            acting_user=coordinator,
            collection=existing or name,
            paths=[data / "images"],
            labels_path=data / "labels.csv",
        )
    if report.rejected:
        raise ServiceError(
            [f"import of {path}: {reason}" for path, _code, reason in report.rejected]
        )
    return Collection.objects.get(name=name)


def _model(coordinator, progress) -> ClassifierModel:
    existing = ClassifierModel.objects.filter(name=LOAD_MODEL).first()
    if existing is not None:
        return existing
    import torch  # heavy: only a first build, which registers the model, needs it
    from safetensors.torch import save_file

    progress(f"load study: registering the model {LOAD_MODEL!r} (random weights)")
    torch.manual_seed(LOAD_SEED)
    with tempfile.TemporaryDirectory(prefix="xrs-load-") as folder:
        weights = Path(folder) / "weights.safetensors"
        save_file(AttentionResNet(in_channels=1, num_classes=2, width=8).state_dict(), str(weights))
        return explain_services.model_register(
            acting_user=coordinator,
            name=LOAD_MODEL,
            form="eager",
            architecture="explain.compute.models:AttentionResNet",
            init_kwargs={"in_channels": 1, "num_classes": 2, "width": 8},
            weights_path=weights,
            input_spec=INPUT_SPEC,
            class_labels=["normal", "nodule"],
            cam_layer="layer3",
        )


def _wait_for_jobs(jobs: list[PrecomputeJob], *, timeout: float, progress) -> None:
    deadline = time.monotonic() + timeout
    pending = list(jobs)
    while pending:
        states = [precompute_progress(job=job) for job in pending]
        failures = [
            f"case {f['case']} {f['config']}: {f['error']}" for s in states for f in s["failures"]
        ]
        if failures:
            raise ServiceError(["precompute failed: " + line for line in failures])
        pending = [
            job for job, state in zip(pending, states, strict=True) if state["status"] == "running"
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise ServiceError(
                f"precompute did not finish within {timeout:.0f} s (is a Celery worker running?)"
            )
        time.sleep(0.5)
    progress("load study: predictions and heatmaps computed")


def load_study_build(
    *,
    readers: int,
    cases_per_reader: int,
    password: str,
    prefix: str = "load-reader",
    protocol: str = Study.Protocol.TWO_STAGE,
    precompute_timeout: float = 600.0,
    progress=print,
) -> tuple[Study, list[str]]:
    """Create, precompute and open a new load-test study with `readers` readers (password
    `password`), each reading `cases_per_reader` main cases. Returns the study and the
    readers' usernames in enrollment order."""
    problems = []
    if readers < 1:
        problems.append("--readers must be at least 1")
    if cases_per_reader < 1:
        problems.append("--cases-per-reader must be at least 1")
    if len(password) < 8:
        problems.append("--password must have at least 8 characters")
    if problems:
        raise ServiceError(problems)
    coordinator = _coordinator()
    collection = _collection(coordinator, cases_per_reader, progress)
    model = _model(coordinator, progress)
    study = services.study_create(
        acting_user=coordinator,
        title=f"Load test {timezone.now():%Y-%m-%d %H:%M:%S.%f}",
        description="Built by manage.py load_study for bench/load_readers.py.",
        model=model,
        collections=[collection],
        consent_text="Load test: synthetic images, simulated readers.",
        instructions="Read each case and answer the questions.",
        design=Study.Design.LATIN_SQUARE,
        protocol=protocol,
        sessions=1,
    )
    for kind, explainer in LOAD_ARMS:
        services.arm_add(acting_user=coordinator, study=study, kind=kind, explainer=explainer)
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(acting_user=coordinator, study=study, main_count=cases_per_reader)
    progress("load study: precomputing predictions and heatmaps")
    jobs = services.study_precompute(acting_user=coordinator, study=study)
    _wait_for_jobs(jobs, timeout=precompute_timeout, progress=progress)
    User = get_user_model()
    usernames = []
    hashed = make_password(password)  # one slow hash for all: they share the password
    for index in range(1, readers + 1):
        username = f"{prefix}-{study.pk}-{index:03d}"
        user = User.objects.create(
            username=username, email=f"{username}@example.org", password=hashed
        )
        services.study_role_add(acting_user=coordinator, study=study, user=user, role="reader")
        usernames.append(username)
    services.study_open(acting_user=coordinator, study=study)
    progress(f"load study: study {study.pk} open with {study.enrollments.count()} enrolled readers")
    return study, usernames


def load_study_report(*, study: Study) -> dict:
    """What the study's readers stored: every trial with its state and responses (stage,
    client key, answers) and how many `trial.answer` audit rows each stage has."""
    audits: dict[tuple[str, str], int] = {}
    trial_ids = {
        str(pk): uid
        for pk, uid in Trial.objects.filter(session__enrollment__study=study).values_list(
            "pk", "uid"
        )
    }
    for row in (
        AuditEntry.objects.filter(
            action="trial.answer", object_type="studies.trial", object_id__in=list(trial_ids)
        )
        .values("object_id", "after__stage")
        .annotate(n=Count("id"))
    ):
        audits[(str(trial_ids[row["object_id"]]), row["after__stage"])] = row["n"]
    trials: dict[str, dict] = {}
    for uid, state, reader in Trial.objects.filter(session__enrollment__study=study).values_list(
        "uid", "state", "session__enrollment__reader__username"
    ):
        trials[str(uid)] = {"reader": reader, "state": state, "responses": []}
    for uid, stage, key, answers in Response.objects.filter(
        trial__session__enrollment__study=study
    ).values_list("trial__uid", "stage", "client_key", "answers"):
        trials[str(uid)]["responses"].append(
            {
                "stage": stage,
                "client_key": str(key),
                "answers": answers,
                "audit_rows": audits.pop((str(uid), stage), 0),
            }
        )
    # `trial.answer` audit rows of a stage that has no response (a write half rolled back)
    orphans = [
        {"trial": uid, "stage": stage, "audit_rows": n}
        for (uid, stage), n in sorted(audits.items())
    ]
    return {"study": study.pk, "trials": trials, "audit_rows_without_response": orphans}
