"""The permission matrix's shared data: the users, studies X and Y, their objects, and the
values that fill the URL patterns (used by test_permission_matrix.py's `world` fixture)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from core.permissions import COORDINATORS_GROUP

# The shared data ---------------------------------------------------------------------------


@dataclass
class World:
    users: dict
    sessions: dict
    values: dict  # placeholder -> value, per variant


def _user(username: str, *, coordinator=False, superuser=False) -> User:
    # no password (hashing one is slow): the clients use sessions made with force_login
    user = User.objects.create_user(username=username, email=f"{username}@example.org")
    if superuser:
        user.is_superuser = user.is_staff = True
        user.save()
    if coordinator:
        group, _ = Group.objects.get_or_create(name=COORDINATORS_GROUP)
        user.groups.add(group)
    return user


def _session_key(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def png_dataset(folder: Path, cases: int = 8) -> Path:
    """`cases` small PNG cases, every other one positive with a lesion mask, as the importer
    takes them: images/, masks/ and labels.csv."""
    import numpy as np
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rows = ["case,label,mask,split"]
    for index in range(cases):
        key = f"matrix-{index:03d}"
        pixels = np.random.default_rng(index).integers(0, 255, (32, 32), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{key}.png")
        mask = ""
        if index % 2:
            mask = f"masks/{key}.png"
            Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), 12)).save(folder / mask)
        rows.append(f"{key},{'nodule' if index % 2 else 'normal'},{mask},test")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def _build_world(dataset: Path) -> World:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from analysis import services as analysis_services
    from explain import services as explain_services
    from library import services as library_services
    from library.models import Collection, LesionMask
    from studies import services
    from studies.models import Study
    from studies.selectors import enrollment_next_trial
    from studies.services.reading import enrollment_consent
    from tests.studies.factories import (
        add_explanations,
        add_predictions,
        make_collection,
        make_model,
    )

    users = {
        "reader_a": _user("reader_a"),
        "reader_b": _user("reader_b"),
        "study_coordinator": _user("coordinator", coordinator=True),
        "study_statistician": _user("statistician"),
        "other_coordinator": _user("coordinator_y", coordinator=True),
        "site_admin": _user("site_admin", superuser=True),
        "outsider": _user("outsider"),
    }
    coordinator = users["study_coordinator"]
    report = library_services.cases_import(
        acting_user=coordinator,
        collection="matrix-cases",
        paths=[dataset / "images"],
        labels_path=dataset / "labels.csv",
    )
    assert report.ok, report.to_dict()
    collection = Collection.objects.get(name="matrix-cases")
    cases = list(collection.cases.order_by("pk"))
    model = make_model("matrix-net")
    add_predictions(model, cases, wrong={cases[0].pk})
    add_explanations(model, cases, "gradcam")
    add_explanations(model, cases, "gradcam", placebo=True)

    study = services.study_create(
        acting_user=coordinator,
        title="Study X",
        model=model,
        collections=[collection],
        consent_text="I agree.",
        design="latin_square",
        sessions=1,
    )
    for kind, explainer in (
        ("unaided", ""),
        ("ai", ""),
        ("ai_explainer", "gradcam"),
        ("placebo", "gradcam"),
    ):
        services.arm_add(acting_user=coordinator, study=study, kind=kind, explainer=explainer)
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(acting_user=coordinator, study=study)
    services.study_role_add(
        acting_user=coordinator, study=study, user=users["study_statistician"], role="statistician"
    )
    for name in ("reader_a", "reader_b"):
        services.study_role_add(
            acting_user=coordinator, study=study, user=users[name], role="reader"
        )
    study = services.study_open(acting_user=coordinator, study=study)
    enrollments = {e.reader.username: e for e in study.enrollments.select_related("reader")}
    for name in ("reader_a", "reader_b"):
        enrollment_consent(
            acting_user=users[name],
            enrollment=enrollments[name],
            consent_version=study.consent_version,
        )
    trial = enrollment_next_trial(enrollment=enrollments["reader_a"])
    invitation, token = services.invitation_create(
        acting_user=coordinator, study=study, email="invited@example.org"
    )

    other = users["other_coordinator"]
    study_y = services.study_create(
        acting_user=other, title="Study Y", model=model, collections=[collection], consent_text="ok"
    )
    assert study_y.status == Study.Status.DRAFT
    arm_y = services.arm_add(acting_user=other, study=study_y, kind="unaided")
    question_y = services.questions_add_defaults(acting_user=other, study=study_y)[0]
    invitation_y, _ = services.invitation_create(
        acting_user=other, study=study_y, email="y@example.org"
    )

    blinded = analysis_services.report_request(acting_user=coordinator, study=study)
    unblinded = analysis_services.report_request(
        acting_user=users["study_statistician"], study=study, unblinded=True
    )
    for built in (blinded, unblinded):
        with mock.patch("analysis.report.render_pdf", side_effect=OSError("no PDF in this test")):
            assert analysis_services.report_build(report_id=built.pk)
        built.refresh_from_db()
        assert built.status == "done", built.error
    bare_case = make_collection("matrix-bare", cases=1).cases.get()  # a row without its files
    job = explain_services.precompute_start(
        acting_user=coordinator, model=model, collection=collection, explainers=["gradcam"]
    )
    # rows for the admin's object pages
    AccessAttempt.objects.create(
        username="x", ip_address="127.0.0.1", user_agent="t", failures_since_start=1
    )
    AccessLog.objects.create(username="x", ip_address="127.0.0.1", user_agent="t")
    AccessFailureLog.objects.create(username="x", ip_address="127.0.0.1", user_agent="t")
    services.reader_profile_update(acting_user=users["reader_a"], years_experience=3)
    masked = LesionMask.objects.select_related("case").first()
    assert masked is not None, "the demo data has lesion masks"

    arm = study.arms.order_by("code").first()
    question = study.questions.order_by("pk").first()
    values = {
        "study_id": study.pk,
        "arm_id": arm.pk,
        "code": arm.code,
        "question_id": question.pk,
        "key": question.key,
        "invitation_id": invitation.pk,
        "token": token,
        "trial_uid": trial.uid,
        "name": "display",
        "report_uid": blinded.uid,
        "kind": "csv",
        "collection_id": collection.pk,
        "case_id": masked.case_id,
        "model_id": model.pk,
        "job_id": job.pk,
        "username": "reader_b",
        "role": "reader",
        "id": users["reader_a"].pk,
        "content_type_id": ContentType.objects.get_for_model(Study).pk,
        "object_id": study.pk,
        "app_label": "studies",
        "url": "no-such-page/",
    }
    variants = {
        "": values,
        "unblinded": {**values, "report_uid": unblinded.uid},
        "case_without_files": {**values, "case_id": bare_case.pk},
        # study X's URL with an object of study Y in it
        "object_of_y": {
            **values,
            "arm_id": arm_y.pk,
            "question_id": question_y.pk,
            "invitation_id": invitation_y.pk,
        },
    }
    sessions = {role: _session_key(user) for role, user in users.items()}
    return World(users=users, sessions=sessions, values=variants)


class override_media:
    def __init__(self, media: Path):
        from django.test import override_settings

        self._override = override_settings(MEDIA_ROOT=media)

    def __enter__(self):
        self._override.enable()

    def __exit__(self, *exc):
        self._override.disable()
