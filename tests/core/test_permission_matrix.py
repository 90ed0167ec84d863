"""Every URL of the project x every kind of user x every method the URL takes: the status each
one gets. The URLs come from the resolver, so a URL added without a line in `EXPECTATIONS`
fails `test_every_url_of_the_project_is_classified` ("unclassified URL").

Users (`ROLES`): anonymous; reader A and reader B, both enrolled in the open study X (the
targets are reader A's trial, session and files); X's coordinator; X's statistician; a member
of the coordinators group who coordinates another study (Y) and has no role in X; a site admin
(superuser, staff); an outsider (signed in, no group, no role).

The rules this module holds the project to:

* Anonymous: pages redirect to the login page (the admin to its own login page); the API
  answers 403 (session authentication comes first, so there is no 401 challenge).
* An object that exists but is not the user's (another study, another reader's trial, a
  report they may not see) answers 404, exactly like an id that does not exist: every 404
  case below is also requested with a made-up id, which must answer the same.
* A user who may see an object but lacks the capability for an action on it answers 403
  (the statistician changing the study; a coordinator or site admin asking for the
  statistician's arm reveal). What a role may not see at all is 404 (the unblinded report
  is invisible to the study's coordinators).
* The case library and the model registry belong to the coordinators group (and site
  admins): their pages answer 404 to anyone else, their API (and the case-file endpoint,
  a DRF view) 403. No object is looked up before that check, so both answers are the same
  for every id.
* Public: login and logout, the invitation link (its token is the capability), the API
  schema and docs, /health/.
* Writes carry no valid input (CSRF is skipped by the test client): a page POST one unknown
  field, an API write an empty JSON object (an empty form for the upload endpoints). A user
  who may write gets the view's own answer to bad input (400, or a redirect for actions
  that take no input), which is what separates "allowed" from "refused". Every request runs
  in a savepoint that is rolled back, so the shared data stays as built.
* Some patterns are also checked with other objects in them (`Url.variant`): the unblinded
  report, study Y's arm, question and invitation in study X's URLs (404 for X's coordinators
  too), a case row without its files (404, not a server error).
* The Django admin (every URL under admin/, classified by that prefix): anyone but a staff
  user is sent to the admin login; the site admin gets each page, or 403 where the
  ModelAdmin refuses the permission (read-only audit rows). The admin's gate does not
  depend on the method, so POSTs are checked for one user of each refused kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, clear_url_caches, get_resolver

from core.permissions import COORDINATORS_GROUP

ROLES = (
    "anonymous",
    "reader_a",
    "reader_b",
    "study_coordinator",
    "study_statistician",
    "other_coordinator",
    "site_admin",
    "outsider",
)
SIGNED_IN = ROLES[1:]
COORDINATORS = {"study_coordinator", "other_coordinator", "site_admin"}  # the library's users
VIEWERS = {"study_coordinator", "study_statistician", "site_admin"}  # who may see study X
MANAGERS = {"study_coordinator", "site_admin"}  # who may change study X
READERS_OF_X = {"reader_a", "reader_b"}
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
MISSING_ID = "987654"
MISSING_UUID = "00000000-0000-4000-8000-00000000beef"


# Policies: who gets what -------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Who may use a URL with one method, and what they get.

    `who`: the roles allowed (they get `ok`); `seen`: roles that see the object but lack the
    capability (403); everyone else signed in gets `refused` (404 for pages and objects,
    403 for the library API). `public`: everyone, anonymous included, gets `ok`."""

    ok: int | tuple[int, ...]
    who: frozenset = frozenset()
    seen: frozenset = frozenset()
    refused: int = 404
    public: bool = False
    per_role: dict = field(default_factory=dict, hash=False)


def _rule(ok, who=(), seen=(), refused=404, public=False, **per_role) -> Rule:
    return Rule(ok, frozenset(who), frozenset(seen), refused, public, per_role)


def everyone(ok, **per_role) -> Rule:
    return _rule(ok, public=True, **per_role)


def signed_in(ok, **per_role) -> Rule:
    return _rule(ok, who=SIGNED_IN, **per_role)


def library(ok, *, api: bool = False) -> Rule:
    return _rule(ok, who=COORDINATORS, refused=403 if api else 404)


def study_viewers(ok) -> Rule:
    return _rule(ok, who=VIEWERS)


def study_managers(ok) -> Rule:
    return _rule(ok, who=MANAGERS, seen={"study_statistician"})


def statistician_only(ok) -> Rule:
    return _rule(ok, who={"study_statistician"}, seen=MANAGERS)


def unblinded_report(ok) -> Rule:
    """Only the statistician sees an unblinded report: it does not exist for anyone else."""
    return _rule(ok, who={"study_statistician"})


def readers_of_x(ok) -> Rule:
    return _rule(ok, who=READERS_OF_X)


def trial_owner(ok) -> Rule:
    return _rule(ok, who={"reader_a"})


@dataclass(frozen=True)
class Url:
    """A URL pattern: whether it is a page (anonymous: login redirect) or the API (403),
    and a rule per method."""

    kind: str  # "page" or "api"
    rules: dict
    variant: str = ""  # which object fills the pattern, when several are checked
    multipart: bool = False  # the API takes form data (uploads), not JSON


def page(**rules) -> Url:
    return Url("page", {m.upper(): r for m, r in rules.items()})


def api(**rules) -> Url:
    return Url("api", {m.upper(): r for m, r in rules.items()})


NOT_ALLOWED = 405
NOT_ALLOWED_API = signed_in(NOT_ALLOWED)  # DRF checks permissions before the method

# Every non-admin URL pattern of the project, as the resolver spells it.
EXPECTATIONS: dict[str, list[Url]] = {
    # core
    "": [
        page(
            get=signed_in(200, reader_a=302, reader_b=302)
        )
    ],
    "health/": [Url("page", {"GET": everyone((200, 503))})],
    "favicon.ico": [Url("page", {"GET": everyone(301)})],
    "accounts/login/": [Url("page", {"GET": everyone(200), "POST": everyone(200)})],
    "accounts/logout/": [Url("page", {"GET": everyone(405), "POST": everyone(302)})],
    "api/schema/": [Url("api", {"GET": everyone(200)})],
    "api/docs/": [Url("api", {"GET": everyone(200)})],
    # case library and model registry (explain)
    "library/": [page(get=library(200), post=library(200))],
    "library/collections/<int:collection_id>/": [page(get=library(200))],
    "library/collections/<int:collection_id>/import/": [page(get=library(200), post=library(200))],
    "library/cases/<int:case_id>/": [page(get=library(200))],
    "library/cases/<int:case_id>/mask.png": [page(get=library(200))],
    "library/cases/<int:case_id>/<str:kind>": [
        api(get=library(200, api=True)),
        Url("api", {"GET": library(404, api=True)}, variant="case_without_files"),
    ],
    "library/models/": [page(get=library(200))],
    "library/models/register/": [page(get=library(200), post=library(200))],
    "library/models/<int:model_id>/": [page(get=library(200))],
    "library/precompute/": [page(get=library(200), post=library(200))],
    "library/precompute/<int:job_id>/": [page(get=library(200))],
    "library/precompute/<int:job_id>/cancel/": [page(get=library(405), post=library(302))],
    "api/v1/collections/": [api(get=library(200, api=True), post=library(400, api=True))],
    "api/v1/collections/<int:collection_id>/": [api(get=library(200, api=True))],
    "api/v1/collections/<int:collection_id>/cases/": [api(get=library(200, api=True))],
    "api/v1/collections/<int:collection_id>/import/": [
        Url("api", {"GET": library(405, api=True), "POST": library(400, api=True)}, multipart=True)
    ],
    "api/v1/cases/<int:case_id>/": [api(get=library(200, api=True))],
    "api/v1/models/": [
        Url("api", {"GET": library(200, api=True), "POST": library(400, api=True)}, multipart=True)
    ],
    "api/v1/models/<int:model_id>/": [api(get=library(200, api=True))],
    "api/v1/models/<int:model_id>/explanation-metrics/": [api(get=library(200, api=True))],
    "api/v1/precompute/": [api(get=library(200, api=True), post=library(400, api=True))],
    "api/v1/precompute/<int:job_id>/": [api(get=library(200, api=True))],
    "api/v1/precompute/<int:job_id>/cancel/": [
        api(get=library(405, api=True), post=library(200, api=True))
    ],
    # coordinator pages of a study (studies)
    "studies/": [page(get=signed_in(200))],
    "studies/new/": [page(get=library(200), post=library(400))],
    "studies/<int:study_id>/": [page(get=study_viewers(200))],
    "studies/<int:study_id>/open/": [page(get=study_viewers(405), post=study_managers(400))],
    "studies/<int:study_id>/close/": [page(get=study_viewers(405), post=study_managers(400))],
    "studies/<int:study_id>/edit/": [page(get=study_viewers(200), post=study_managers(400))],
    "studies/<int:study_id>/arms/": [page(get=study_viewers(200), post=study_managers(400))],
    "studies/<int:study_id>/arms/<int:arm_id>/remove/": [
        page(get=study_viewers(405), post=study_managers(400)),
        Url("page", {"POST": study_managers(404)}, variant="object_of_y"),
    ],
    "studies/<int:study_id>/questions/": [page(get=study_viewers(200), post=study_managers(400))],
    "studies/<int:study_id>/questions/defaults/": [
        page(get=study_viewers(405), post=study_managers(400))
    ],
    "studies/<int:study_id>/questions/<int:question_id>/remove/": [
        page(get=study_viewers(405), post=study_managers(400)),
        Url("page", {"POST": study_managers(404)}, variant="object_of_y"),
    ],
    "studies/<int:study_id>/questions/<int:question_id>/edit/": [
        page(get=study_viewers(200), post=study_managers(400)),
        Url("page", {"GET": study_viewers(404), "POST": study_managers(404)}, variant="object_of_y"),
    ],
    "studies/<int:study_id>/questions/<int:question_id>/move/": [
        page(get=study_viewers(405), post=study_managers(400)),
        Url("page", {"POST": study_managers(404)}, variant="object_of_y"),
    ],
    "studies/<int:study_id>/cases/": [page(get=study_viewers(200), post=study_managers(400))],
    "studies/<int:study_id>/cases/add/": [page(get=study_viewers(405), post=study_managers(400))],
    "studies/<int:study_id>/cases/exclude/": [
        page(get=study_viewers(405), post=study_managers(400))
    ],
    "studies/<int:study_id>/readiness/": [page(get=study_viewers(200))],
    "studies/<int:study_id>/people/": [page(get=study_viewers(200), post=study_managers(400))],
    "studies/<int:study_id>/people/remove/": [
        page(get=study_viewers(405), post=study_managers(400))
    ],
    "studies/<int:study_id>/people/invite/": [
        page(get=study_viewers(405), post=study_managers(400))
    ],
    "studies/<int:study_id>/invitations/<int:invitation_id>/revoke/": [
        page(get=study_viewers(405), post=study_managers(302)),
        Url("page", {"POST": study_managers(404)}, variant="object_of_y"),
    ],
    "studies/<int:study_id>/progress/": [page(get=study_viewers(200))],
    "studies/<int:study_id>/responses/": [page(get=study_viewers(200))],
    "studies/<int:study_id>/precompute/": [page(get=study_viewers(405), post=study_managers(302))],
    "studies/<int:study_id>/reveal/": [
        page(get=statistician_only(200), post=statistician_only(200))
    ],
    "studies/<int:study_id>/audit/": [page(get=study_viewers(200), post=study_viewers(405))],
    "studies/<int:study_id>/audit.csv": [page(get=study_viewers(200))],
    # the invitation link: the token is the capability
    "invite/<str:token>/": [
        # the statistician, who can unblind the arms, cannot become a reader of the study
        page(get=everyone(200), post=everyone(302, anonymous=400, study_statistician=400))
    ],
    # the reader's pages and API
    "read/": [page(get=signed_in(200))],
    "read/<int:study_id>/": [page(get=readers_of_x(200), post=readers_of_x(302))],
    "read/<int:study_id>/next/": [page(get=readers_of_x(302))],
    "read/trials/<uuid:trial_uid>/": [page(get=trial_owner(200))],
    "read/trials/<uuid:trial_uid>/files/<str:name>": [page(get=trial_owner(200))],
    "api/v1/reading/trials/<uuid:trial_uid>/": [api(get=trial_owner(200))],
    "api/v1/reading/trials/<uuid:trial_uid>/answer/": [
        api(get=NOT_ALLOWED_API, post=trial_owner(400))
    ],
    "api/v1/reading/trials/<uuid:trial_uid>/reveal/": [
        api(get=NOT_ALLOWED_API, post=trial_owner(400))
    ],
    # the studies API
    "api/v1/studies/": [api(get=signed_in(200), post=library(400, api=True))],
    "api/v1/studies/<int:study_id>/": [api(get=study_viewers(200), patch=study_managers(400))],
    "api/v1/studies/<int:study_id>/readiness/": [api(get=study_viewers(200))],
    "api/v1/studies/<int:study_id>/open/": [api(get=NOT_ALLOWED_API, post=study_managers(400))],
    "api/v1/studies/<int:study_id>/precompute/": [
        api(get=NOT_ALLOWED_API, post=study_managers(400))  # everything is computed already
    ],
    "api/v1/studies/<int:study_id>/close/": [api(get=NOT_ALLOWED_API, post=study_managers(200))],
    "api/v1/studies/<int:study_id>/arms/": [api(get=study_viewers(200), post=study_managers(400))],
    "api/v1/studies/<int:study_id>/arms/<str:code>/": [
        api(get=NOT_ALLOWED_API, delete=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/reveal-arms/": [
        api(get=NOT_ALLOWED_API, post=statistician_only(200))
    ],
    "api/v1/studies/<int:study_id>/questions/": [
        api(get=study_viewers(200), post=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/questions/defaults/": [
        api(get=NOT_ALLOWED_API, post=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/questions/<str:key>/": [
        api(get=NOT_ALLOWED_API, patch=study_managers(400), delete=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/cases/": [api(get=study_viewers(200), put=study_managers(400))],
    "api/v1/studies/<int:study_id>/questions/<str:key>/move/": [
        api(get=NOT_ALLOWED_API, post=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/cases/add/": [api(get=NOT_ALLOWED_API, post=study_managers(400))],
    "api/v1/studies/<int:study_id>/cases/exclude/": [
        api(get=NOT_ALLOWED_API, post=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/cases/select/": [
        api(get=NOT_ALLOWED_API, post=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/invitations/": [
        api(get=study_viewers(200), post=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/invitations/<int:invitation_id>/revoke/": [
        api(get=NOT_ALLOWED_API, post=study_managers(200)),
        Url("api", {"POST": study_managers(404)}, variant="object_of_y"),
    ],
    "api/v1/studies/<int:study_id>/roles/": [api(get=study_viewers(200), post=study_managers(400))],
    "api/v1/studies/<int:study_id>/roles/<str:username>/<str:role>/": [
        api(get=NOT_ALLOWED_API, delete=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/progress/": [api(get=study_viewers(200))],
    "api/v1/studies/<int:study_id>/readers/": [api(get=study_viewers(200))],
    "api/v1/invitations/accept/": [Url("api", {"GET": everyone(405), "POST": everyone(400)})],
    # reports (analysis)
    "studies/<int:study_id>/reports/": [page(get=study_viewers(200))],
    "studies/<int:study_id>/reports/request/": [page(get=signed_in(405), post=study_viewers(302))],
    "reports/<uuid:report_uid>/progress/": [
        page(get=study_viewers(200)),
        Url("page", {"GET": unblinded_report(200)}, variant="unblinded"),
    ],
    "reports/<uuid:report_uid>/files/<str:kind>": [
        page(get=study_viewers(200)),
        Url("page", {"GET": unblinded_report(200)}, variant="unblinded"),
    ],
    "api/v1/studies/<int:study_id>/reports/": [
        api(get=study_viewers(200), post=study_viewers(202))
    ],
    "api/v1/reports/<uuid:report_uid>/": [
        api(get=study_viewers(200)),
        Url("api", {"GET": unblinded_report(200)}, variant="unblinded"),
    ],
}

# The resolver ------------------------------------------------------------------------------


def _walk(resolver, prefix=""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def project_routes() -> list[tuple[str, URLPattern]]:
    return list(_walk(get_resolver()))


def is_admin(route: str) -> bool:
    return route.startswith("admin/")


# The admin's gate (AdminSite.admin_view) does not depend on the method: every admin URL is
# requested with GET by every role, and with POST by one user of each kind it refuses.
ADMIN_POST_ROLES = ("anonymous", "reader_a", "study_coordinator")


def _cases() -> list[tuple[str, str, str, str]]:
    """(route, variant, role, method) for every URL the resolver knows."""
    cases = []
    for route, _ in project_routes():
        if is_admin(route):
            cases += [(route, "", role, "GET") for role in ROLES]
            cases += [(route, "", role, "POST") for role in ADMIN_POST_ROLES]
            continue
        for url in EXPECTATIONS.get(route, []):
            for method in url.rules:
                for role in ROLES:
                    cases.append((route, url.variant, role, method))
    return cases


CASES = _cases()


def _case_id(case) -> str:
    route, variant, role, method = case
    return f"{method} /{route}{'[' + variant + ']' if variant else ''} as {role}"


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


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once for the module inside a transaction that is rolled back at its end; each
    test runs in a savepoint of it (pytest-django's `db`)."""
    media = tmp_path_factory.mktemp("matrix-media")
    dataset = png_dataset(tmp_path_factory.mktemp("matrix-cases"))
    with django_db_blocker.unblock():
        # pytest-django creates the test database only for tests that ask for `db`
        name = str(connection.settings_dict["NAME"])
        assert Path(name).name.startswith("test_") or "memory" in name, (
            f"not a test database: {name}"
        )
        with override_media(media), transaction.atomic():
            built = _build_world(dataset)
            built.media = media
            yield built
            transaction.set_rollback(True)


class override_media:
    def __init__(self, media: Path):
        from django.test import override_settings

        self._override = override_settings(MEDIA_ROOT=media)

    def __enter__(self):
        self._override.enable()

    def __exit__(self, *exc):
        self._override.disable()


@pytest.fixture
def _media_root(request, settings, tmp_path):
    """Overrides the per-test media folder of tests/conftest.py: the shared data's files."""
    if "world" in request.fixturenames:
        settings.MEDIA_ROOT = request.getfixturevalue("world").media
    else:
        settings.MEDIA_ROOT = tmp_path / "media"
    yield settings.MEDIA_ROOT


# Making the requests -----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^)]*\)")


def fill(route: str, values: dict, *, missing: bool = False) -> str:
    """The path of `route` with the world's values (or made-up ids, with `missing`)."""

    def value(name: str, converter: str | None) -> str:
        if missing and name in MISSABLE:
            return MISSING_UUID if converter == "uuid" else MISSING_ID
        return str(values[name])

    path = _REGEX_GROUP.sub(lambda m: value(m["name"], None), route)
    path = _PLACEHOLDER.sub(lambda m: value(m["name"], m["converter"]), path)
    path = path.replace("^", "").replace("$", "")
    return "/" + path


# Where a placeholder name means something else in one route.
ROUTE_VALUES = {"library/cases/<int:case_id>/<str:kind>": {"kind": "display"}}

# Ids whose object decides who may see the URL: a made-up one must answer like another's.
MISSABLE = {"study_id", "trial_uid", "report_uid"}


def admin_model(route: str):
    """The model an admin URL is about (admin/<app>/<model>/...), or None."""
    found = re.match(r"admin/(\w+)/(\w+)/", route)
    if not found:
        return None
    return next(
        (
            m
            for m in admin.site._registry
            if (m._meta.app_label, m._meta.model_name) == found.groups()
        ),
        None,
    )


def _admin_object_id(route: str, values: dict) -> dict:
    """An existing object's pk for an admin URL of a model."""
    model = admin_model(route)
    if model is None or "<path:object_id>" not in route:
        return values
    obj = model.objects.order_by("pk").first()
    assert obj is not None, f"the shared data has no {model._meta.label} for {route}"
    return {**values, "object_id": obj.pk}


def _client(world: World, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    return client


# A page POST carries one unknown field, so that forms built with `request.POST or None` are
# bound and answer their validation errors (an empty POST renders the blank form).
PAGE_POST = {"matrix": "1"}


def _send(client: Client, method: str, path: str, kind: str, multipart: bool):
    if kind == "api" and method != "GET" and not multipart:
        return client.generic(method, path, data=b"{}", content_type="application/json")
    if method == "POST":
        return client.post(path, data=PAGE_POST)
    return client.generic(method, path)


def _request(world: World, role: str, method: str, path: str, kind: str, multipart: bool = False):
    with transaction.atomic():
        response = _send(_client(world, role), method, path, kind, multipart)
        transaction.set_rollback(True)
    return response


def _describe(response) -> str:
    where = response.get("Location", "")
    return f"{response.status_code}{' -> ' + where if where else ''}"


def _expected_status(url: Url, role: str, method: str) -> int | tuple[int, ...]:
    rule: Rule = url.rules[method]
    if role in rule.per_role:
        return rule.per_role[role]
    if rule.public or role in rule.who:
        return rule.ok
    if role == "anonymous":
        return "login"
    if role in rule.seen:
        return 403
    return rule.refused


def _matches(response, expected) -> bool:
    if expected == "login":
        return response.status_code == 302 and response["Location"].startswith(LOGIN)
    if expected == "admin-index":
        return response.status_code == 302 and response["Location"] == "/admin/"
    if expected == "admin-login":
        return response.status_code == 302 and response["Location"].startswith(ADMIN_LOGIN)
    if isinstance(expected, tuple):
        return response.status_code in expected
    return response.status_code == expected


def _admin_expected(route: str, role: str, method: str, values: dict):
    name = {r: p.name for r, p in project_routes()}.get(route) or ""
    if route == "admin/login/":
        return 302 if role == "site_admin" else 200
    if route == "admin/logout/" and role != "site_admin":
        return "admin-index"
    if role != "site_admin":
        return "admin-login"
    # the site admin: what the ModelAdmin grants
    model = admin_model(route)
    if model is not None and name:
        from django.test import RequestFactory

        model_admin = admin.site._registry[model]
        request = RequestFactory().get("/")
        request.user = User.objects.get(username="site_admin")
        suffix = name.rsplit("_", 1)[-1]
        allowed = {
            "changelist": model_admin.has_view_or_change_permission(request),
            "add": model_admin.has_add_permission(request),
            "history": model_admin.has_view_or_change_permission(request),
            "delete": model_admin.has_delete_permission(request),
            "change": model_admin.has_view_or_change_permission(request),
            "password": True,
        }.get(suffix, True)
        return 200 if allowed else 403
    special = {
        "admin/logout/": 405,
        "admin/autocomplete/": 403,  # without a field to complete
        "admin/r/<path:content_type_id>/<path:object_id>/": 404,  # studies have no public page
        "admin/(?P<url>.*)$": 404,
    }
    if route in special:
        return special[route]
    if not name:
        return 302  # admin/<app>/<model>/<id>/ redirects to the change page
    return 200


# The tests ---------------------------------------------------------------------------------


def test_every_url_of_the_project_is_classified():
    routes = {route for route, _ in project_routes()}
    unclassified = sorted(r for r in routes if not is_admin(r) and r not in EXPECTATIONS)
    assert not unclassified, "unclassified URL(s): add them to EXPECTATIONS: " + ", ".join(
        unclassified
    )
    stale = sorted(set(EXPECTATIONS) - routes)
    assert not stale, "EXPECTATIONS lists URL(s) the project no longer has: " + ", ".join(stale)


def test_the_matrix_covers_every_role_for_every_url_and_method():
    seen = {(route, variant, method) for route, variant, _, method in CASES}
    per_url = {
        key: {r for route, variant, r, method in CASES if (route, variant, method) == key}
        for key in seen
    }
    partial = {
        key: roles
        for key, roles in per_url.items()
        if roles != set(ROLES) and not (is_admin(key[0]) and key[2] == "POST")
    }
    assert not partial
    assert len(CASES) > 1000


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_access(case, world, db):
    route, variant, role, method = case
    values = {**world.values[variant], **ROUTE_VALUES.get(route, {})}
    multipart = False
    if is_admin(route):
        values = _admin_object_id(route, values)
        expected = _admin_expected(route, role, method, values)
        kind = "page"
    else:
        url = next(u for u in EXPECTATIONS[route] if u.variant == variant)
        expected = _expected_status(url, role, method)
        kind, multipart = url.kind, url.multipart
        if expected == "login" and kind == "api":
            expected = 403
    path = fill(route, values)
    response = _request(world, role, method, path, kind, multipart)
    assert _matches(response, expected), (
        f"{method} {path} as {role}: expected {expected}, got {_describe(response)}"
    )
    if expected == 404 and not is_admin(route) and any(f"{name}>" in route for name in MISSABLE):
        missing_path = fill(route, values, missing=True)
        other = _request(world, role, method, missing_path, kind, multipart)
        assert other.status_code == 404, (
            f"{method} {missing_path} as {role} (a made-up id) answered {_describe(other)}, "
            f"but the existing object that is not theirs answered 404"
        )


def test_a_new_url_without_a_line_in_the_table_is_reported(monkeypatch):
    """The classification check fails for a URL the table does not know."""
    from django.urls import path

    import config.urls

    extra = path("studies/<int:study_id>/secret/", lambda request, study_id: None)
    monkeypatch.setattr(config.urls, "urlpatterns", [*config.urls.urlpatterns, extra])
    clear_url_caches()
    try:
        with pytest.raises(AssertionError, match="unclassified URL"):
            test_every_url_of_the_project_is_classified()
    finally:
        monkeypatch.undo()
        clear_url_caches()


def test_the_statistician_cannot_also_be_a_reader_of_the_study(world, db):
    client = _client(world, "study_coordinator")
    study_roles = f"/api/v1/studies/{world.values['']['study_id']}/roles/"
    for username, role in (("statistician", "reader"), ("reader_a", "statistician")):
        response = client.post(
            study_roles, {"username": username, "role": role}, content_type="application/json"
        )
        assert response.status_code == 400, response.content
        assert "cannot also be one of its readers" in response.json()["detail"]
    accepted = client.post(
        study_roles,
        {"username": "outsider", "role": "statistician"},
        content_type="application/json",
    )
    assert accepted.status_code == 201
