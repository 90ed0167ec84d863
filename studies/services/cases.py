"""Choosing a draft study's cases: the seeded selection, cases picked by hand, exclusions."""

from __future__ import annotations

import math

from django.db import transaction

from core import audit
from core.errors import ServiceError
from library.models import Case
from studies.models import Study, StudyCase
from studies.selectors.truth import case_ai_correctness
from studies.services.drafts import locked_study, require_draft


def study_cases_set(
    *,
    acting_user,
    study: Study,
    main: list[int],
    training: list[int] = (),
    attention: list[int] = (),
) -> dict:
    """Replace the study's case selection with these case ids."""
    main, training, attention = list(main), list(training), list(attention)
    require_draft(study)
    problems = []
    everything = main + training + attention
    if len(set(everything)) != len(everything):
        problems.append(
            "a case can have only one role in a study (main, training or attention check)"
        )
    known = set(
        Case.objects.filter(pk__in=everything, collection__in=study.collections.all()).values_list(
            "pk", flat=True
        )
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
        study = locked_study(study)
        require_draft(study)
        before = _case_counts(study)
        study.study_cases.all().delete()
        StudyCase.objects.bulk_create(
            [StudyCase(study=study, case_id=pk, role=StudyCase.Role.MAIN) for pk in main]
            + [StudyCase(study=study, case_id=pk, role=StudyCase.Role.TRAINING) for pk in training]
            + [
                StudyCase(study=study, case_id=pk, role=StudyCase.Role.ATTENTION)
                for pk in attention
            ]
        )
        after = _case_counts(study)
        audit.record(
            acting_user=acting_user,
            action="study.cases_set",
            obj=study,
            study=study,
            before=before,
            after={
                **after,
                "main_ids": sorted(main),
                "training_ids": sorted(training),
                "attention_ids": sorted(attention),
            },
        )
    return after


def _current_roles(study: Study) -> dict[int, str]:
    return dict(study.study_cases.order_by("case_id").values_list("case_id", "role"))


def _set_from_roles(*, acting_user, study: Study, roles: dict[int, str]) -> dict:
    by_role = {role: [pk for pk, r in roles.items() if r == role] for role in StudyCase.Role.values}
    return study_cases_set(
        acting_user=acting_user,
        study=study,
        main=by_role[StudyCase.Role.MAIN],
        training=by_role[StudyCase.Role.TRAINING],
        attention=by_role[StudyCase.Role.ATTENTION],
    )


def _cases_by_key(study: Study, keys: list[str]) -> tuple[list[int], list[str]]:
    """Ids of the cases of the study's collections named by `keys`, and the problems."""
    keys = list(dict.fromkeys(k.strip() for k in keys if k and k.strip()))
    found: dict[str, list[int]] = {}
    for pk, key in Case.objects.filter(
        collection__in=study.collections.all(), key__in=keys
    ).values_list("pk", "key"):
        found.setdefault(key, []).append(pk)
    problems = []
    unknown = [k for k in keys if k not in found]
    if unknown:
        problems.append(
            f"{len(unknown)} case key(s) are not in the study's collections: "
            + ", ".join(unknown[:10])
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
        raise ServiceError(
            f"unknown case role {role!r}; choose one of {', '.join(StudyCase.Role.values)}"
        )
    require_draft(study)
    by_key, problems = _cases_by_key(study, list(keys))
    wanted = list(dict.fromkeys([int(pk) for pk in case_ids] + by_key))
    if not wanted and not problems:
        problems.append("pick at least one case (tick it in the list or give its key)")
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        study = locked_study(study)
        roles = _current_roles(study)
        roles.update(dict.fromkeys(wanted, role))
        return _set_from_roles(acting_user=acting_user, study=study, roles=roles)


def study_cases_exclude(*, acting_user, study: Study, case_ids) -> dict:
    """Take these cases out of the study's selection (e.g. those whose explanation is empty)."""
    case_ids = {int(pk) for pk in case_ids}
    require_draft(study)
    if not case_ids:
        raise ServiceError("tick at least one case to exclude")
    with transaction.atomic():
        study = locked_study(study)
        roles = _current_roles(study)
        missing = sorted(case_ids - set(roles))
        if missing:
            raise ServiceError(
                f"{len(missing)} case(s) are not in the study's selection: "
                + ", ".join(map(str, missing[:10]))
            )
        return _set_from_roles(
            acting_user=acting_user,
            study=study,
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
            drop = set(right[len(right) - len(extra_wrong) :]) if extra_wrong else set()
            main = [pk for pk in main if pk not in drop] + extra_wrong
    return study_cases_set(
        acting_user=acting_user, study=study, main=main, training=training, attention=attention
    )


def _seeded_order(ids: list[int], *, seed: int) -> list[int]:
    import hashlib

    return sorted(ids, key=lambda pk: hashlib.sha256(f"{seed}:select:{pk}".encode()).hexdigest())
