"""Configuring a draft study: details, arms, questions, case selection, roles.

Every service refuses to change a study that is no longer a draft (the
configuration freezes when it opens) and records what changed in the audit
trail, in the same transaction as the change.
"""

from __future__ import annotations

import math
import re
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max

from core import audit
from core.errors import ServiceError
from core.permissions import is_coordinator
from explain.models import ClassifierModel
from library.models import Case, Collection
from studies.models import Arm, Question, Study, StudyCase, StudyRole

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
CONFIDENCE_SCALES = ("slider100", "scale5", "scale7")
LIKERT_POINTS = (5, 7)
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_KEYS = frozenset({"defaults"})  # taken by URLs
MAX_SESSIONS = 100
MAX_WASHOUT_DAYS = 365
ARM_CODES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# The default Likert set (issue 4): ready to add with one click.
DEFAULT_LIKERT = (
    ("clarity", "The explanation was clear.", Question.AppliesTo.EXPLANATION),
    ("usefulness", "The explanation was useful for my decision.", Question.AppliesTo.EXPLANATION),
    ("trust", "I trust the AI's output for this case.", Question.AppliesTo.AI),
    (
        "region_agreement",
        "The highlighted region agrees with my own finding.",
        Question.AppliesTo.HEATMAP,
    ),
)
DEFAULT_ANCHORS = ["strongly disagree", "strongly agree"]


def _require_draft(study: Study) -> None:
    if study.status != Study.Status.DRAFT:
        raise ServiceError(
            f"study '{study.title}' is {study.status}: its configuration was frozen when it opened"
            " and can no longer be changed"
        )


def _locked(study: Study) -> Study:
    """Lock the study's row so concurrent edits serialize, and re-read it (in place, so the
    caller's object shows the change)."""
    Study.objects.select_for_update().filter(pk=study.pk).first()
    study.refresh_from_db()
    return study


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
        problems.append(f"unknown design {values['design']!r}; choose one of {', '.join(Study.Design.values)}")
    if "protocol" in values and values["protocol"] not in Study.Protocol.values:
        problems.append(
            f"unknown protocol {values['protocol']!r}; choose one of {', '.join(Study.Protocol.values)}"
        )
    if "sessions" in values and (
        not isinstance(values["sessions"], int) or not 1 <= values["sessions"] <= MAX_SESSIONS
    ):
        problems.append(f"sessions must be a whole number from 1 to {MAX_SESSIONS}")
    if "washout_days" in values and (
        not isinstance(values["washout_days"], int) or not 0 <= values["washout_days"] <= MAX_WASHOUT_DAYS
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
            acting_user=acting_user, action="study.create", obj=study, study=study,
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
        study = _locked(study)
        _require_draft(study)
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
                acting_user=acting_user, action="study.update", obj=study, study=study,
                before={k: before[k] for k in changed}, after={k: after[k] for k in changed},
            )
    return study


# Arms ---------------------------------------------------------------------------------------


def _resolve_arm_explainer(study: Study, kind: str, explainer: str, params, seed: int) -> dict:
    from explain.selectors import explainer_config_resolve

    if kind in (Arm.Kind.UNAIDED, Arm.Kind.AI):
        if explainer:
            raise ServiceError(f"an arm of kind '{kind}' shows no explanation; leave the explainer empty")
        return {"explainer": "", "params": {}, "seed": 0, "param_hash": ""}
    if not explainer:
        raise ServiceError(f"an arm of kind '{kind}' needs an explainer")
    if study.model_id is None:
        raise ServiceError("choose the study's model before adding arms with an explainer")
    config = explainer_config_resolve(
        model=study.model, explainer=explainer, params=params, seed=seed,
        placebo=kind == Arm.Kind.PLACEBO,
    )
    return {key: config[key] for key in ("explainer", "params", "seed", "param_hash")}


def _arm_state(arm: Arm) -> dict:
    return {"code": arm.code, "kind": arm.kind, "explainer": arm.explainer, "params": arm.params, "seed": arm.seed}


def arm_add(
    *, acting_user, study: Study, kind: str, explainer: str = "", params: dict | None = None, seed: int = 0
) -> Arm:
    if kind not in Arm.Kind.values:
        raise ServiceError(f"unknown arm kind {kind!r}; choose one of {', '.join(Arm.Kind.values)}")
    with transaction.atomic():
        study = _locked(study)
        _require_draft(study)
        resolved = _resolve_arm_explainer(study, kind, explainer, params, seed)
        duplicate = study.arms.filter(
            kind=kind, explainer=resolved["explainer"], param_hash=resolved["param_hash"]
        ).exists()
        if duplicate:
            raise ServiceError("the study already has an arm with this condition")
        used = set(study.arms.values_list("code", flat=True))
        free = [code for code in ARM_CODES if code not in used]
        if not free:
            raise ServiceError(f"a study has at most {len(ARM_CODES)} arms")
        arm = Arm.objects.create(study=study, code=free[0], kind=kind, **resolved)
        audit.record(acting_user=acting_user, action="study.arm_add", obj=study, study=study, after=_arm_state(arm))
    return arm


def arm_remove(*, acting_user, arm: Arm) -> None:
    with transaction.atomic():
        study = _locked(arm.study)
        _require_draft(study)
        before = _arm_state(arm)
        arm.delete()
        audit.record(acting_user=acting_user, action="study.arm_remove", obj=study, study=study, before=before)


# Questions ----------------------------------------------------------------------------------


def _question_values(study: Study, values: dict) -> tuple[dict, list[str]]:
    """Normalise and check one question's fields; returns (values, problems)."""
    problems: list[str] = []
    kind = values.get("kind")
    label = values.get("key") or kind or "question"
    if kind not in Question.Kind.values:
        return values, [f"question {label}: unknown kind {kind!r}; choose one of {', '.join(Question.Kind.values)}"]
    key = str(values.get("key") or "").strip()
    if key in RESERVED_KEYS:
        problems.append(f"question key {key!r} is reserved; choose another")
    elif not KEY_PATTERN.match(key):
        problems.append(
            f"question key {key!r} must start with a letter and hold only lower-case letters, digits"
            " and underscores (at most 40)"
        )
    if not str(values.get("text") or "").strip():
        problems.append(f"question {label}: the question text is required")
    options = [str(o).strip() for o in (values.get("options") or []) if str(o).strip()]
    if kind == Question.Kind.DIAGNOSIS:
        if not options and study.model_id:
            options = list(study.model.class_labels)
        if len(options) < 2:
            problems.append(
                f"question {label}: a diagnosis question needs at least two options (or choose the"
                " study's model first to use its labels)"
            )
        elif len(set(options)) != len(options):
            problems.append(f"question {label}: the options must be different from each other")
    elif options:
        problems.append(f"question {label}: only diagnosis questions have options")
    scale = values.get("scale") or ""
    if kind == Question.Kind.CONFIDENCE:
        scale = scale or "slider100"
        if scale not in CONFIDENCE_SCALES:
            problems.append(
                f"question {label}: confidence scale must be one of {', '.join(CONFIDENCE_SCALES)}"
            )
    elif scale:
        problems.append(f"question {label}: only confidence questions have a scale")
    points = values.get("points")
    anchors = [str(a).strip() for a in (values.get("anchors") or [])]
    if kind == Question.Kind.LIKERT:
        points = points or 5
        if points not in LIKERT_POINTS:
            problems.append(f"question {label}: a Likert item has 5 or 7 points, not {points}")
        anchors = anchors or list(DEFAULT_ANCHORS)
        if len(anchors) != 2 or not all(anchors):
            problems.append(f"question {label}: a Likert item needs two anchors (lowest and highest)")
    else:
        if points:
            problems.append(f"question {label}: only Likert items have points")
        if anchors:
            problems.append(f"question {label}: only Likert items have anchors")
        points, anchors = None, []
    applies_to = values.get("applies_to") or Question.AppliesTo.ALL
    if applies_to not in Question.AppliesTo.values:
        problems.append(
            f"question {label}: applies_to must be one of {', '.join(Question.AppliesTo.values)}"
        )
    stage = values.get("stage") or (
        Question.Stage.EVERY if kind in (Question.Kind.DIAGNOSIS, Question.Kind.CONFIDENCE) else Question.Stage.FINAL
    )
    if stage not in Question.Stage.values:
        problems.append(f"question {label}: stage must be one of {', '.join(Question.Stage.values)}")
    normalised = {
        "key": key,
        "kind": kind,
        "text": str(values.get("text") or "").strip(),
        "help_text": str(values.get("help_text") or "").strip(),
        "options": options if kind == Question.Kind.DIAGNOSIS else [],
        "scale": scale if kind == Question.Kind.CONFIDENCE else "",
        "points": points,
        "anchors": anchors,
        "applies_to": applies_to,
        "stage": stage,
        "required": bool(values.get("required", kind != Question.Kind.FREE_TEXT)),
    }
    return normalised, problems


# The fields that belong to one question kind only, and their empty value.
KIND_FIELDS = {
    "options": (Question.Kind.DIAGNOSIS, []),
    "scale": (Question.Kind.CONFIDENCE, ""),
    "points": (Question.Kind.LIKERT, None),
    "anchors": (Question.Kind.LIKERT, []),
}


def _question_state(question: Question) -> dict:
    return {
        field: getattr(question, field)
        for field in ("key", "kind", "text", "help_text", "options", "scale", "points", "anchors",
                      "applies_to", "stage", "required", "order")
    }


def question_add(*, acting_user, study: Study, **values) -> Question:
    """Add a question. Kinds: diagnosis, confidence, likert, free_text."""
    with transaction.atomic():
        study = _locked(study)
        _require_draft(study)
        normalised, problems = _question_values(study, values)
        if not problems and study.questions.filter(key=normalised["key"]).exists():
            problems.append(f"the study already has a question with key {normalised['key']!r}")
        if problems:
            raise ServiceError(problems)
        order = (study.questions.aggregate(m=Max("order"))["m"] or 0) + 1
        question = Question.objects.create(study=study, order=order, **normalised)
        audit.record(
            acting_user=acting_user, action="study.question_add", obj=study, study=study, after=_question_state(question)
        )
    return question


def question_update(*, acting_user, question: Question, **changes) -> Question:
    with transaction.atomic():
        study = _locked(question.study)
        _require_draft(study)
        before = _question_state(question)
        merged = {**before, **changes}
        for field, (kind, empty) in KIND_FIELDS.items():
            # a field of the old kind, not given again, does not belong to a new kind
            if field not in changes and merged.get("kind") != kind:
                merged[field] = empty
        normalised, problems = _question_values(study, merged)
        if (
            not problems
            and normalised["key"] != question.key
            and study.questions.filter(key=normalised["key"]).exists()
        ):
            problems.append(f"the study already has a question with key {normalised['key']!r}")
        if problems:
            raise ServiceError(problems)
        for field, value in normalised.items():
            setattr(question, field, value)
        if "order" in changes:
            question.order = int(changes["order"])
        question.save()
        after = _question_state(question)
        audit.record(
            acting_user=acting_user, action="study.question_update", obj=study, study=study,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return question


def question_remove(*, acting_user, question: Question) -> None:
    with transaction.atomic():
        study = _locked(question.study)
        _require_draft(study)
        before = _question_state(question)
        question.delete()
        audit.record(acting_user=acting_user, action="study.question_remove", obj=study, study=study, before=before)


QUESTION_MOVES = {"up": -1, "down": 1}


def question_move(*, acting_user, question: Question, direction: str) -> Question:
    """Move a question of a draft one place up or down (renumbering the study's questions
    1, 2, 3... in their current order). At the top or bottom already: nothing changes."""
    if direction not in QUESTION_MOVES:
        raise ServiceError(f"unknown direction {direction!r}; choose up or down")
    with transaction.atomic():
        study = _locked(question.study)
        _require_draft(study)
        questions = list(study.questions.order_by("order", "id"))
        before = [q.key for q in questions]
        index = next(i for i, q in enumerate(questions) if q.pk == question.pk)
        target = index + QUESTION_MOVES[direction]
        if not 0 <= target < len(questions):
            return question
        questions[index], questions[target] = questions[target], questions[index]
        for order, item in enumerate(questions, start=1):
            if item.order != order:
                item.order = order
                item.save(update_fields=["order"])
        audit.record(
            acting_user=acting_user, action="study.question_move", obj=study, study=study,
            before={"order": before}, after={"order": [q.key for q in questions], "moved": question.key},
        )
    question.refresh_from_db()
    return question


def questions_add_defaults(*, acting_user, study: Study) -> list[Question]:
    """Add the standard questions a study usually needs and do not exist yet: a diagnosis on the
    model's labels, a 0-100 confidence slider, and the default Likert set."""
    wanted = [
        {"key": "diagnosis", "kind": Question.Kind.DIAGNOSIS, "text": "What is your diagnosis?"},
        {
            "key": "confidence",
            "kind": Question.Kind.CONFIDENCE,
            "text": "How confident are you that the finding is present? (0 = certainly absent, 100 = certainly present)",
            "scale": "slider100",
        },
    ] + [
        {"key": key, "kind": Question.Kind.LIKERT, "text": text, "points": 5, "applies_to": applies_to}
        for key, text, applies_to in DEFAULT_LIKERT
    ]
    added = []
    with transaction.atomic():
        study = _locked(study)
        _require_draft(study)
        existing = set(study.questions.values_list("key", flat=True))
        for values in wanted:
            if values["key"] not in existing:
                added.append(question_add(acting_user=acting_user, study=study, **values))
    return added


# Cases --------------------------------------------------------------------------------------


def study_cases_set(
    *, acting_user, study: Study, main: list[int], training: list[int] = (), attention: list[int] = ()
) -> dict:
    """Replace the study's case selection with these case ids."""
    main, training, attention = list(main), list(training), list(attention)
    _require_draft(study)
    problems = []
    everything = main + training + attention
    if len(set(everything)) != len(everything):
        problems.append("a case can have only one role in a study (main, training or attention check)")
    known = set(
        Case.objects.filter(pk__in=everything, collection__in=study.collections.all()).values_list("pk", flat=True)
    )
    outside = sorted(set(everything) - known)
    if outside:
        problems.append(
            f"{len(outside)} case(s) are not in the study's collections: "
            + ", ".join(str(pk) for pk in outside[:10])
        )
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        study = _locked(study)
        _require_draft(study)
        before = _case_counts(study)
        study.study_cases.all().delete()
        StudyCase.objects.bulk_create(
            [StudyCase(study=study, case_id=pk, role=StudyCase.Role.MAIN) for pk in main]
            + [StudyCase(study=study, case_id=pk, role=StudyCase.Role.TRAINING) for pk in training]
            + [StudyCase(study=study, case_id=pk, role=StudyCase.Role.ATTENTION) for pk in attention]
        )
        after = _case_counts(study)
        audit.record(
            acting_user=acting_user, action="study.cases_set", obj=study, study=study, before=before,
            after={**after, "main_ids": sorted(main), "training_ids": sorted(training),
                   "attention_ids": sorted(attention)},
        )
    return after


def _current_roles(study: Study) -> dict[int, str]:
    return dict(study.study_cases.order_by("case_id").values_list("case_id", "role"))


def _set_from_roles(*, acting_user, study: Study, roles: dict[int, str]) -> dict:
    by_role = {role: [pk for pk, r in roles.items() if r == role] for role in StudyCase.Role.values}
    return study_cases_set(
        acting_user=acting_user, study=study, main=by_role[StudyCase.Role.MAIN],
        training=by_role[StudyCase.Role.TRAINING], attention=by_role[StudyCase.Role.ATTENTION],
    )


def _cases_by_key(study: Study, keys: list[str]) -> tuple[list[int], list[str]]:
    """Ids of the cases of the study's collections named by `keys`, and the problems."""
    keys = list(dict.fromkeys(k.strip() for k in keys if k and k.strip()))
    found: dict[str, list[int]] = {}
    for pk, key in Case.objects.filter(collection__in=study.collections.all(), key__in=keys).values_list("pk", "key"):
        found.setdefault(key, []).append(pk)
    problems = []
    unknown = [k for k in keys if k not in found]
    if unknown:
        problems.append(
            f"{len(unknown)} case key(s) are not in the study's collections: " + ", ".join(unknown[:10])
        )
    ambiguous = [k for k in keys if len(found.get(k, [])) > 1]
    if ambiguous:
        problems.append(
            "these keys name a case in more than one of the study's collections (pick them from the"
            " list instead): " + ", ".join(ambiguous[:10])
        )
    return [found[k][0] for k in keys if len(found.get(k, [])) == 1], problems


def study_cases_add(
    *, acting_user, study: Study, role: str = StudyCase.Role.MAIN, case_ids=(), keys=()
) -> dict:
    """Add cases picked by hand (ids, or keys within the study's collections) in one role,
    keeping the rest of the selection; a case already chosen takes the new role."""
    if role not in StudyCase.Role.values:
        raise ServiceError(f"unknown case role {role!r}; choose one of {', '.join(StudyCase.Role.values)}")
    _require_draft(study)
    by_key, problems = _cases_by_key(study, list(keys))
    wanted = list(dict.fromkeys([int(pk) for pk in case_ids] + by_key))
    if not wanted and not problems:
        problems.append("pick at least one case (tick it in the list or give its key)")
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        study = _locked(study)
        roles = _current_roles(study)
        roles.update(dict.fromkeys(wanted, role))
        return _set_from_roles(acting_user=acting_user, study=study, roles=roles)


def study_cases_exclude(*, acting_user, study: Study, case_ids) -> dict:
    """Take these cases out of the study's selection (e.g. those whose explanation is empty)."""
    case_ids = {int(pk) for pk in case_ids}
    _require_draft(study)
    if not case_ids:
        raise ServiceError("tick at least one case to exclude")
    with transaction.atomic():
        study = _locked(study)
        roles = _current_roles(study)
        missing = sorted(case_ids - set(roles))
        if missing:
            raise ServiceError(
                f"{len(missing)} case(s) are not in the study's selection: " + ", ".join(map(str, missing[:10]))
            )
        return _set_from_roles(
            acting_user=acting_user, study=study,
            roles={pk: role for pk, role in roles.items() if pk not in case_ids},
        )


def _case_counts(study: Study) -> dict:
    counts = dict.fromkeys(StudyCase.Role.values, 0)
    for role in study.study_cases.values_list("role", flat=True):
        counts[role] += 1
    return counts


def study_cases_select(
    *,
    acting_user,
    study: Study,
    split: str = "",
    main_count: int | None = None,
    training_count: int = 0,
    attention_count: int = 0,
) -> dict:
    """Choose cases from the study's collections (optionally one split), reproducibly from the
    study's seed. When a minimum share of AI-wrong cases is set and predictions exist, the
    selection takes enough of the cases the model gets wrong to meet it."""
    from studies.selectors import case_ai_correctness

    cases = Case.objects.filter(collection__in=study.collections.all())
    if split:
        cases = cases.filter(split=split)
    ids = list(cases.order_by("pk").values_list("pk", flat=True))
    wanted_extra = training_count + attention_count
    problems = []
    if not ids:
        problems.append(
            "the study's collections have no cases" + (f" in split {split!r}" if split else "")
        )
    if main_count is not None and main_count < 1:
        problems.append("choose at least one main case")
    if training_count < 0 or attention_count < 0:
        problems.append("training and attention-check counts cannot be negative")
    available = len(ids)
    needed = (main_count or max(available - wanted_extra, 0)) + wanted_extra
    if ids and needed > available:
        problems.append(f"asked for {needed} cases but only {available} are available")
    if problems:
        raise ServiceError(problems)
    order = _seeded_order(ids, seed=study.seed)
    training = order[:training_count]
    attention = order[training_count : training_count + attention_count]
    rest = order[wanted_extra:]
    count = main_count or len(rest)
    main = rest[:count]
    if study.min_ai_wrong_share and study.model_id:
        correctness = case_ai_correctness(model=study.model, case_ids=rest)
        wrong = [pk for pk in rest if correctness.get(pk) is False]
        need_wrong = min(len(wrong), math.ceil(study.min_ai_wrong_share * count - 1e-9))
        have_wrong = [pk for pk in main if correctness.get(pk) is False]
        if len(have_wrong) < need_wrong:
            extra_wrong = [pk for pk in wrong if pk not in main][: need_wrong - len(have_wrong)]
            right = [pk for pk in main if correctness.get(pk) is not False]
            drop = set(right[len(right) - len(extra_wrong):]) if extra_wrong else set()
            main = [pk for pk in main if pk not in drop] + extra_wrong
    return study_cases_set(
        acting_user=acting_user, study=study, main=main, training=training, attention=attention
    )


def _seeded_order(ids: list[int], *, seed: int) -> list[int]:
    import hashlib

    return sorted(ids, key=lambda pk: hashlib.sha256(f"{seed}:select:{pk}".encode()).hexdigest())


# Roles --------------------------------------------------------------------------------------


def study_role_add(*, acting_user, study: Study, user, role: str) -> StudyRole:
    """Give a person a role in the study. A reader added to an open study is enrolled at once."""
    from studies.services.lifecycle import reader_enroll

    if role not in StudyRole.Role.values:
        raise ServiceError(f"unknown role {role!r}; choose one of {', '.join(StudyRole.Role.values)}")
    if role == StudyRole.Role.COORDINATOR and not is_coordinator(user):
        raise ServiceError(f"{user.get_username()} is not a coordinator (ask a site admin to add them)")
    if study.status == Study.Status.CLOSED and role != StudyRole.Role.STATISTICIAN:
        # A closed study still needs its statistician (the only person who can unblind it).
        raise ServiceError(f"study '{study.title}' is closed; only its statistician can still be assigned")
    # The statistician can reveal what the arms are: they cannot also read the study blind.
    other = {
        StudyRole.Role.READER: StudyRole.Role.STATISTICIAN,
        StudyRole.Role.STATISTICIAN: StudyRole.Role.READER,
    }
    if role in other and StudyRole.objects.filter(study=study, user=user, role=other[role]).exists():
        raise ServiceError(
            f"{user.get_username()} is a {other[role]} of this study; its statistician, who can see"
            " what the arms are, cannot also be one of its readers"
        )
    with transaction.atomic():
        study = _locked(study)
        member, created = StudyRole.objects.get_or_create(study=study, user=user, role=role)
        if created:
            audit.record(
                acting_user=acting_user, action="study.role_add", obj=study, study=study,
                after={"user": user.get_username(), "role": role},
            )
        if role == StudyRole.Role.READER and study.status == Study.Status.OPEN:
            reader_enroll(acting_user=acting_user, study=study, reader=user)
    return member


def study_role_remove(*, acting_user, study: Study, user, role: str) -> None:
    with transaction.atomic():
        study = _locked(study)
        if study.status == Study.Status.CLOSED and role != StudyRole.Role.STATISTICIAN:
            raise ServiceError(
                f"study '{study.title}' is closed; its readers and coordinators stay as they are"
                " (only the statistician can still be changed)"
            )
        if role == StudyRole.Role.READER and study.enrollments.filter(reader=user).exists():
            raise ServiceError(
                f"{user.get_username()} is enrolled with a frozen schedule; readers cannot be removed"
                " from an open study (their reads so far stay in the analysis)"
            )
        if role == StudyRole.Role.COORDINATOR and study.roles.filter(role=role).count() == 1:
            raise ServiceError("a study needs at least one coordinator")
        deleted, _ = StudyRole.objects.filter(study=study, user=user, role=role).delete()
        if not deleted:
            raise ServiceError(f"{user.get_username()} has no {role} role in this study")
        audit.record(
            acting_user=acting_user, action="study.role_remove", obj=study, study=study,
            before={"user": user.get_username(), "role": role},
        )


def user_by_username(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise ServiceError(f"no user named {username!r}") from None
