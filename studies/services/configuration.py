"""Configuring a draft study: its details and its arms (questions, cases and roles are in the
modules beside this one).

Every service refuses to change a study that is no longer a draft (the configuration freezes
when it opens) and records what changed in the audit trail, in the same transaction as the
change.
"""

from __future__ import annotations

import secrets

from django.db import transaction

from core import audit
from core.errors import ServiceError
from core.permissions import is_coordinator
from explain.explainer_requests import explainer_config_resolve
from explain.models import ClassifierModel
from library.models import Collection
from studies.models import Arm, Study, StudyRole
from studies.services.drafts import locked_study, require_draft

STUDY_FIELDS = (
    "title",
    "description",
    "reader_title",
    "reader_description",
    "instructions",
    "consent_text",
    "design",
    "protocol",
    "sessions",
    "washout_days",
    "min_ai_wrong_share",
)
MAX_SESSIONS = 100
MAX_WASHOUT_DAYS = 365
ARM_CODES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _study_state(study: Study) -> dict:
    state = {field: getattr(study, field) for field in STUDY_FIELDS}
    state["model"] = study.model.name if study.model_id else None
    state["collections"] = sorted(study.collections.values_list("name", flat=True))
    state["consent_version"] = study.consent_version
    return state


def _check_study_fields(values: dict) -> list[str]:
    problems = []
    if "title" in values and not str(values["title"]).strip():
        problems.append("the title is required")
    if "design" in values and values["design"] not in Study.Design.values:
        problems.append(
            f"unknown design {values['design']!r}; choose one of {', '.join(Study.Design.values)}"
        )
    if "protocol" in values and values["protocol"] not in Study.Protocol.values:
        problems.append(
            f"unknown protocol {values['protocol']!r}; choose one of {', '.join(Study.Protocol.values)}"
        )
    if "sessions" in values and (
        not isinstance(values["sessions"], int) or not 1 <= values["sessions"] <= MAX_SESSIONS
    ):
        problems.append(f"sessions must be a whole number from 1 to {MAX_SESSIONS}")
    if "washout_days" in values and (
        not isinstance(values["washout_days"], int)
        or not 0 <= values["washout_days"] <= MAX_WASHOUT_DAYS
    ):
        problems.append(f"washout_days must be a whole number of days from 0 to {MAX_WASHOUT_DAYS}")
    share = values.get("min_ai_wrong_share")
    if share is not None and not (0 <= float(share) < 1):
        problems.append("min_ai_wrong_share must be a share between 0 and 1 (e.g. 0.2 for 20%)")
    return problems


def study_create(
    *,
    acting_user,
    title: str,
    description: str = "",
    model: ClassifierModel | None = None,
    collections: list[Collection] | tuple = (),
    **fields,
) -> Study:
    """A new draft study; its creator becomes its coordinator."""
    if not is_coordinator(acting_user):
        raise ServiceError("only coordinators can create studies")
    unknown = set(fields) - set(STUDY_FIELDS)
    if unknown:
        raise ServiceError(f"unknown study field(s): {', '.join(sorted(unknown))}")
    values = {"title": title, "description": description, **fields}
    problems = _check_study_fields(values)
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        study = Study.objects.create(
            model=model, seed=secrets.randbits(48), created_by=acting_user, **values
        )
        study.collections.set(collections)
        StudyRole.objects.create(study=study, user=acting_user, role=StudyRole.Role.COORDINATOR)
        audit.record(
            acting_user=acting_user,
            action="study.create",
            obj=study,
            study=study,
            after={**_study_state(study), "seed": study.seed},
        )
    return study


def study_update(*, acting_user, study: Study, **changes) -> Study:
    """Change details, model, collections or design of a draft study.

    `model` takes a ClassifierModel (or None), `collections` a list of
    Collections. A changed consent text raises the consent version.
    """
    unknown = set(changes) - set(STUDY_FIELDS) - {"model", "collections"}
    if unknown:
        raise ServiceError(f"unknown study field(s): {', '.join(sorted(unknown))}")
    problems = _check_study_fields(changes)
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        study = locked_study(study)
        require_draft(study)
        before = _study_state(study)
        for field in STUDY_FIELDS:
            if field in changes:
                setattr(study, field, changes[field])
        if "consent_text" in changes and changes["consent_text"] != before["consent_text"]:
            study.consent_version += 1
        if "model" in changes:
            study.model = changes["model"]
        study.save()
        if "collections" in changes:
            study.collections.set(changes["collections"])
            study.study_cases.exclude(case__collection__in=changes["collections"]).delete()
        if "model" in changes and changes["model"] is not None:
            for arm in study.arms.exclude(explainer=""):
                _resolve_arm_explainer(study, arm.kind, arm.explainer, arm.params, arm.seed)
        after = _study_state(study)
        changed = {k for k in after if after[k] != before[k]}
        if changed:
            audit.record(
                acting_user=acting_user,
                action="study.update",
                obj=study,
                study=study,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return study


# Arms ---------------------------------------------------------------------------------------


def _resolve_arm_explainer(study: Study, kind: str, explainer: str, params, seed: int) -> dict:
    if kind in (Arm.Kind.UNAIDED, Arm.Kind.AI):
        if explainer:
            raise ServiceError(
                f"an arm of kind '{kind}' shows no explanation; leave the explainer empty"
            )
        return {"explainer": "", "params": {}, "seed": 0, "param_hash": ""}
    if not explainer:
        raise ServiceError(f"an arm of kind '{kind}' needs an explainer")
    if study.model_id is None:
        raise ServiceError("choose the study's model before adding arms with an explainer")
    config = explainer_config_resolve(
        model=study.model,
        explainer=explainer,
        params=params,
        seed=seed,
        placebo=kind == Arm.Kind.PLACEBO,
    )
    return {key: config[key] for key in ("explainer", "params", "seed", "param_hash")}


def _arm_state(arm: Arm) -> dict:
    return {
        "code": arm.code,
        "kind": arm.kind,
        "explainer": arm.explainer,
        "params": arm.params,
        "seed": arm.seed,
        "shows_clinical_history": arm.shows_clinical_history,
    }


def _check_shows_clinical_history(value) -> None:
    if not isinstance(value, bool):
        raise ServiceError("shows_clinical_history must be true or false")


def arm_add(
    *,
    acting_user,
    study: Study,
    kind: str,
    explainer: str = "",
    params: dict | None = None,
    seed: int = 0,
    shows_clinical_history: bool = False,
) -> Arm:
    """A new arm of a draft study, with the next free code. `shows_clinical_history` is the
    arm's factor of whether readers see each case's clinical history."""
    if kind not in Arm.Kind.values:
        raise ServiceError(f"unknown arm kind {kind!r}; choose one of {', '.join(Arm.Kind.values)}")
    _check_shows_clinical_history(shows_clinical_history)
    with transaction.atomic():
        study = locked_study(study)
        require_draft(study)
        resolved = _resolve_arm_explainer(study, kind, explainer, params, seed)
        duplicate = study.arms.filter(
            kind=kind,
            explainer=resolved["explainer"],
            param_hash=resolved["param_hash"],
            shows_clinical_history=shows_clinical_history,
        ).exists()
        if duplicate:
            raise ServiceError("the study already has an arm with this condition")
        used = set(study.arms.values_list("code", flat=True))
        free = [code for code in ARM_CODES if code not in used]
        if not free:
            raise ServiceError(f"a study has at most {len(ARM_CODES)} arms")
        arm = Arm.objects.create(
            study=study,
            code=free[0],
            kind=kind,
            shows_clinical_history=shows_clinical_history,
            **resolved,
        )
        audit.record(
            acting_user=acting_user,
            action="study.arm_add",
            obj=study,
            study=study,
            after=_arm_state(arm),
        )
    return arm


def arm_remove(*, acting_user, arm: Arm) -> None:
    with transaction.atomic():
        study = locked_study(arm.study)
        require_draft(study)
        before = _arm_state(arm)
        arm.delete()
        audit.record(
            acting_user=acting_user,
            action="study.arm_remove",
            obj=study,
            study=study,
            before=before,
        )


def arm_update(*, acting_user, arm: Arm, shows_clinical_history: bool) -> Arm:
    """Whether a draft's arm shows readers each case's clinical history (frozen once the study
    opens, like the rest of the arm)."""
    _check_shows_clinical_history(shows_clinical_history)
    with transaction.atomic():
        study = locked_study(arm.study)
        require_draft(study)
        arm = Arm.objects.select_for_update().filter(pk=arm.pk, study=study).first()
        if arm is None:
            raise ServiceError("the arm no longer exists; it was removed from the study")
        if arm.shows_clinical_history == shows_clinical_history:
            return arm
        duplicate = (
            study.arms.filter(
                kind=arm.kind,
                explainer=arm.explainer,
                param_hash=arm.param_hash,
                shows_clinical_history=shows_clinical_history,
            )
            .exclude(pk=arm.pk)
            .exists()
        )
        if duplicate:
            raise ServiceError("the study already has an arm with this condition")
        before = _arm_state(arm)
        arm.shows_clinical_history = shows_clinical_history
        arm.save(update_fields=["shows_clinical_history"])
        audit.record(
            acting_user=acting_user,
            action="study.arm_update",
            obj=study,
            study=study,
            before=before,
            after=_arm_state(arm),
        )
    return arm
