"""The permission matrix's table: the users (`ROLES`), the rules, what every URL of the
project answers (`EXPECTATIONS`) and the cases made from the resolver (`CASES`). The tests are in
test_permission_matrix.py and test_permission_matrix_classification.py.

Every URL of the project x every kind of user x every method the URL takes: the status each
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

from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver

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
    "library/cases/<int:case_id>/": [page(get=library(200), post=library(302))],
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
    "api/v1/cases/<int:case_id>/": [
        api(get=library(200, api=True), patch=library(400, api=True))
    ],
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
    "studies/<int:study_id>/arms/<int:arm_id>/clinical-history/": [
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
    "studies/<int:study_id>/questionnaires/": [
        page(get=study_viewers(200), post=study_managers(400))
    ],
    "studies/<int:study_id>/plan/": [page(get=study_viewers(200), post=study_managers(400))],
    "studies/<int:study_id>/plan/quality/": [
        page(get=study_viewers(405), post=study_managers(400))
    ],
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
    # nothing due (no session finished): the study page; a POST without a questionnaire, too
    "read/<int:study_id>/questionnaire/": [page(get=readers_of_x(302), post=readers_of_x(302))],
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
    "api/v1/studies/<int:study_id>/analysis-plan/": [
        api(get=study_viewers(200), put=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/quality-rules/": [
        api(get=study_viewers(200), put=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/questionnaires/": [
        api(get=study_viewers(200), put=study_managers(400))
    ],
    "api/v1/studies/<int:study_id>/precompute/": [
        api(get=NOT_ALLOWED_API, post=study_managers(400))  # everything is computed already
    ],
    "api/v1/studies/<int:study_id>/close/": [api(get=NOT_ALLOWED_API, post=study_managers(200))],
    "api/v1/studies/<int:study_id>/arms/": [api(get=study_viewers(200), post=study_managers(400))],
    "api/v1/studies/<int:study_id>/arms/<str:code>/": [
        api(get=NOT_ALLOWED_API, patch=study_managers(400), delete=study_managers(400))
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
    "studies/<int:study_id>/sample-size/": [page(get=study_viewers(200), post=study_viewers(200))],
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
