"""Reads of the studies app: who may see which study, a study's problems and readiness, and
readers' progress. Nothing here returns an arm's explainer except through the statistician's
audited reveal (`studies.services.study_arms_reveal`) and the draft editor's `arm_condition`."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from core.permissions import is_coordinator
from explain.compute import heatmaps
from explain.models import Explanation, Prediction
from library.labels import FORMULA_STARTS
from library.models import CaseLabel
from studies import blinding, randomization
from studies.models import (
    NEUTRAL_READER_TITLE,
    SIMILAR_CASES,
    Arm,
    Enrollment,
    Question,
    ReadingSession,
    Study,
    StudyCase,
    StudyRole,
    Trial,
)

# Access -------------------------------------------------------------------------------------


def study_list_for_user(*, user) -> QuerySet[Study]:
    """Studies the user coordinates or is the statistician of (site admins: every study)."""
    studies = Study.objects.all()
    if not user.is_superuser:
        studies = studies.filter(
            roles__user=user, roles__role__in=[StudyRole.Role.COORDINATOR, StudyRole.Role.STATISTICIAN]
        )
    return studies.distinct().prefetch_related("collections").select_related("model")


def studies_by_role(*, user) -> dict[str, list[Study]]:
    """The studies a user has a part in, per role ("coordinator", "statistician", "reader"),
    newest first. A study appears once per role the user holds in it."""
    rows: dict[str, list[Study]] = {role: [] for role in StudyRole.Role.values}
    if not user.is_authenticated:
        return rows
    roles = (
        StudyRole.objects.filter(user=user)
        .select_related("study", "study__model")
        .order_by("-study__created_at", "-study_id")
    )
    for role in roles:
        rows[role.role].append(role.study)
    enrolled = {study.pk for study in rows[StudyRole.Role.READER]}
    for enrollment in Enrollment.objects.filter(reader=user).select_related("study").order_by("-enrolled_at"):
        if enrollment.study_id not in enrolled:
            rows[StudyRole.Role.READER].append(enrollment.study)
    return rows


def study_has_role(*, study: Study, user, role: str) -> bool:
    if not user.is_authenticated:
        return False
    return StudyRole.objects.filter(study=study, user=user, role=role).exists()


def study_can_manage(*, study: Study, user) -> bool:
    """Coordinators of the study (who are still coordinators) and site admins."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return is_coordinator(user) and study_has_role(study=study, user=user, role=StudyRole.Role.COORDINATOR)


def study_can_view(*, study: Study, user) -> bool:
    """Managers and the study's statistician."""
    return study_can_manage(study=study, user=user) or study_has_role(
        study=study, user=user, role=StudyRole.Role.STATISTICIAN
    )


# Ground truth and the AI's correctness ------------------------------------------------------


def case_truth(*, labels: dict[str, int], positive_class: str) -> bool | None:
    """Whether the model's positive finding is present: True/False, None when unknown
    (no labels at all, or the finding marked uncertain)."""
    if not labels:
        return None
    value = labels.get(positive_class)
    if value == CaseLabel.UNCERTAIN:
        return None
    return value == CaseLabel.POSITIVE


def case_ai_correctness(*, model, case_ids) -> dict[int, bool | None]:
    """case id -> whether the model's stored prediction matches the ground truth
    (None: no prediction yet, or the truth is unknown)."""
    case_ids = list(case_ids)
    labels: dict[int, dict[str, int]] = {pk: {} for pk in case_ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=case_ids).values_list(
        "case_id", "name", "value"
    ):
        labels[case_id][name] = value
    predicted = dict(
        Prediction.objects.filter(model=model, case_id__in=case_ids).values_list("case_id", "predicted_class")
    )
    result: dict[int, bool | None] = {}
    for pk in case_ids:
        truth = case_truth(labels=labels[pk], positive_class=model.positive_class)
        if pk not in predicted or truth is None:
            result[pk] = None
        else:
            result[pk] = (predicted[pk] == model.positive_class) == truth
    return result


def study_strata(*, study: Study, case_ids) -> dict[int, str] | None:
    """Randomization strata of main cases: ground truth x whether the AI is right, so that every
    reader reads positive and negative cases, and AI-wrong cases, under every arm."""
    if study.model_id is None:
        return None
    case_ids = list(case_ids)
    correctness = case_ai_correctness(model=study.model, case_ids=case_ids)
    labels: dict[int, dict[str, int]] = {pk: {} for pk in case_ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=case_ids).values_list("case_id", "name", "value"):
        labels[case_id][name] = value
    strata = {}
    for pk in case_ids:
        truth = case_truth(labels=labels[pk], positive_class=study.model.positive_class)
        truth_part = {True: "positive", False: "negative"}.get(truth, "unknown")
        ai_part = {True: "ai_right", False: "ai_wrong"}.get(correctness.get(pk), "ai_unknown")
        strata[pk] = f"{truth_part}/{ai_part}"
    return strata


# Configuration, problems and readiness ------------------------------------------------------


def study_case_ids(*, study: Study) -> dict[str, list[int]]:
    roles: dict[str, list[int]] = {role: [] for role in StudyCase.Role.values}
    for case_id, role in study.study_cases.order_by("case_id").values_list("case_id", "role"):
        roles[role].append(case_id)
    return roles


def arm_readiness(*, study: Study) -> list[dict]:
    """Per arm: how many of the study's cases have what the arm shows (prediction, explanation)."""
    case_ids = [pk for ids in study_case_ids(study=study).values() for pk in ids]
    total = len(case_ids)
    predicted = (
        Prediction.objects.filter(model=study.model, case_id__in=case_ids).count() if study.model_id else 0
    )
    rows = []
    for arm in study.arms.order_by("code"):
        needs = []
        if arm.shows_ai:
            needs.append(("prediction", predicted))
        if arm.shows_explanation:
            explained = Explanation.objects.filter(
                model=study.model, case_id__in=case_ids, explainer=arm.explainer,
                placebo=arm.kind == Arm.Kind.PLACEBO, param_hash=arm.param_hash,
            ).count()
            needs.append(("explanation", explained))
        missing = {name: total - present for name, present in needs if present < total}
        rows.append(
            {
                "code": arm.code,
                "kind": arm_blinded_kind(kind=arm.kind, study=study),
                "condition": arm_condition(arm=arm, study=study),
                "cases": total,
                "ready": not missing,
                "missing": missing,
                "present": dict(needs),
            }
        )
    return rows


def study_ai_wrong(*, study: Study) -> dict:
    """How many main cases the AI gets wrong, and, once readers are enrolled, how many scheduled
    main trials per arm show a wrong AI output."""
    main = study_case_ids(study=study)[StudyCase.Role.MAIN]
    correctness = case_ai_correctness(model=study.model, case_ids=main) if study.model_id else {}
    wrong = sorted(pk for pk, ok in correctness.items() if ok is False)
    known = sum(1 for ok in correctness.values() if ok is not None)
    per_arm = []
    for arm in study.arms.order_by("code"):
        trials = Trial.objects.filter(arm=arm, kind=Trial.Kind.MAIN)
        per_arm.append(
            {
                "code": arm.code,
                "shows_ai": arm.shows_ai,
                "trials": trials.count(),
                "ai_wrong_trials": trials.filter(case_id__in=wrong).count(),
            }
        )
    return {
        "main_cases": len(main),
        "cases_with_known_correctness": known,
        "ai_wrong_cases": len(wrong),
        "ai_wrong_share": (len(wrong) / known) if known else None,
        "min_ai_wrong_share": study.min_ai_wrong_share,
        "per_arm": per_arm,
    }


def study_problems(*, study: Study) -> list[str]:
    """Everything that stops the study from opening, one sentence each (empty: it can open)."""
    problems: list[str] = []
    if not study.title.strip():
        problems.append("the study has no title")
    if not study.consent_text.strip():
        problems.append("the study has no consent text")
    if study.model_id is None:
        problems.append("choose the model whose outputs the study shows")
    if not study.collections.exists():
        problems.append("choose at least one case collection")
    arms = list(study.arms.order_by("code"))
    if not arms:
        problems.append("the study has no arms; add at least one (e.g. unaided and AI + explanation)")
    questions = list(study.questions.all())
    if not questions:
        problems.append("the study has no questions")
    elif not any(q.kind == Question.Kind.DIAGNOSIS for q in questions):
        problems.append("the study needs a diagnosis question (the analysis compares diagnoses)")
    for question in questions:
        if question.kind == Question.Kind.DIAGNOSIS and len(question.options) < 2:
            problems.append(f"question {question.key} has fewer than two options")
        shown = {
            Question.AppliesTo.AI: ("the AI output", lambda arm: arm.shows_ai),
            Question.AppliesTo.EXPLANATION: ("an explanation", lambda arm: arm.shows_explanation),
            Question.AppliesTo.HEATMAP: ("a heatmap", lambda arm: arm.shows_heatmap),
        }.get(question.applies_to)
        if shown is not None and not any(shown[1](arm) for arm in arms):
            problems.append(f"question {question.key} applies to arms that show {shown[0]}, but no arm does")
    if study.protocol == Study.Protocol.TWO_STAGE and arms and not any(arm.shows_ai for arm in arms):
        problems.append("two-stage reading reveals the AI output, but no arm shows it")
    cases = study_case_ids(study=study)
    main = cases[StudyCase.Role.MAIN]
    if not main:
        problems.append("the study has no main cases; choose its cases")
    if arms and main:
        problems += _sentence_case(randomization.validate_design(
            design=study.design,
            cases=main,
            arms=[arm.code for arm in arms],
            sessions=study.sessions,
            washout_days=study.washout_days,
            training_cases=cases[StudyCase.Role.TRAINING],
            attention_cases=cases[StudyCase.Role.ATTENTION],
        ))
    if study.model_id and main:
        for row in arm_readiness(study=study):
            for what, missing in row["missing"].items():
                problems.append(
                    f"arm {row['code']}: {missing} of {row['cases']} cases have no precomputed {what} yet"
                    " (run the precompute for this model and collection)"
                )
        if study.min_ai_wrong_share:
            wrong = study_ai_wrong(study=study)
            share = wrong["ai_wrong_share"]
            if share is None or share < study.min_ai_wrong_share:
                problems.append(
                    f"the AI is wrong on {wrong['ai_wrong_cases']} of {wrong['cases_with_known_correctness']}"
                    f" main cases with known truth ({(share or 0):.0%}), below the required"
                    f" {study.min_ai_wrong_share:.0%}; change the case selection"
                )
        unknown_training = [
            pk for pk, ok in case_ai_correctness(model=study.model, case_ids=cases[StudyCase.Role.TRAINING]).items()
            if ok is None and not CaseLabel.objects.filter(case_id=pk).exists()
        ]
        if unknown_training:
            problems.append(
                f"{len(unknown_training)} training case(s) have no ground truth to show as feedback"
            )
    return problems


def explanation_is_empty(*, explanation: Explanation) -> bool:
    """Whether the overlay of ``explanation`` highlights (next to) nothing (heatmaps.EMPTY_RULE).
    Similar-cases explanations are never empty in this sense."""
    if explanation.explainer == SIMILAR_CASES:
        return False
    return heatmaps.is_empty(fraction=explanation.highlighted_fraction, raw_max=explanation.raw_max)


def study_empty_explanations(*, study: Study) -> list[dict]:
    """Every (heatmap arm, study case) whose precomputed map is empty, in arm and case order:
    ``{"arm": code, "case_id", "case_key", "role", "highlighted_fraction"}``. Readers see a
    neutral "no region highlighted" state for these; the coordinator may exclude the cases."""
    if study.model_id is None:
        return []
    roles = dict(study.study_cases.values_list("case_id", "role"))
    rows = []
    for arm in study.arms.order_by("code"):
        if not arm.shows_heatmap:
            continue
        explanations = Explanation.objects.filter(
            model=study.model, case_id__in=roles, explainer=arm.explainer,
            placebo=arm.kind == Arm.Kind.PLACEBO, param_hash=arm.param_hash,
        ).select_related("case").order_by("case_id")
        for explanation in explanations:
            if explanation_is_empty(explanation=explanation):
                rows.append(
                    {
                        "arm": arm.code, "case_id": explanation.case_id,
                        "case_key": explanation.case.key, "role": roles[explanation.case_id],
                        "highlighted_fraction": explanation.highlighted_fraction,
                    }
                )
    return rows


def study_reader_text_warnings(*, study: Study) -> list[str]:
    """Reader-facing texts that name an explainer or an arm kind (studies.blinding)."""
    texts: dict[str, str | list[str]] = {
        "The reader-facing title": study.reader_title,
        "The reader-facing description": study.reader_description,
        "The instructions": study.instructions,
        "The consent text": study.consent_text,
    }
    for question in study.questions.all():
        texts[f"Question {question.key}"] = [
            question.text, question.help_text, *map(str, question.options), *map(str, question.anchors)
        ]
    return blinding.text_warnings(texts)


def study_warnings(*, study: Study) -> list[str]:
    """What the coordinator should know before opening, without stopping it from opening:
    reader-facing texts that could unblind, empty explanations, no case the AI gets wrong."""
    warnings = study_reader_text_warnings(study=study)
    if not study.reader_title.strip():
        warnings.append(
            f"The study has no reader-facing title; readers will see '{NEUTRAL_READER_TITLE}'."
        )
    empty = study_empty_explanations(study=study)
    if empty:
        cases = len({row["case_id"] for row in empty})
        arms = ", ".join(sorted({row["arm"] for row in empty}))
        warnings.append(
            f"{len(empty)} explanation(s) on {cases} case(s) highlight no region (arm {arms}): readers "
            "will see 'No region highlighted'. Exclude those cases on the readiness page, or keep them"
            " (the analysis reports them)."
        )
    if study.model_id and study.arms.exclude(kind=Arm.Kind.UNAIDED).exists():
        wrong = study_ai_wrong(study=study)
        if wrong["main_cases"] and wrong["cases_with_known_correctness"] and not wrong["ai_wrong_cases"]:
            warnings.append(
                f"The AI is wrong on 0 of {wrong['cases_with_known_correctness']} main cases with known "
                "truth: over- and under-reliance on the AI cannot be measured. Add cases the AI gets "
                "wrong (or set a minimum share of AI-wrong cases)."
            )
    return warnings


def _sentence_case(problems: list[str]) -> list[str]:
    """The schedule module writes full sentences; the problem lists here are lower-case clauses."""
    return [p[:1].lower() + p[1:].rstrip(".") for p in problems]


def study_config_snapshot(*, study: Study) -> dict:
    """The configuration as a JSON document (frozen when the study opens)."""
    cases = study_case_ids(study=study)
    return {
        "title": study.title,
        "description": study.description,
        "reader_title": study.reader_title,
        "reader_description": study.reader_description,
        "instructions": study.instructions,
        "consent_text": study.consent_text,
        "consent_version": study.consent_version,
        "model": {"name": study.model.name, "uid": str(study.model.uid), "sha256": study.model.file_sha256}
        if study.model_id
        else None,
        "collections": sorted(study.collections.values_list("name", flat=True)),
        "design": study.design,
        "protocol": study.protocol,
        "sessions": study.sessions,
        "washout_days": study.washout_days,
        "min_ai_wrong_share": study.min_ai_wrong_share,
        "seed": study.seed,
        "schedule_algorithm": randomization.ALGORITHM_VERSION,
        "arms": [
            {"code": a.code, "kind": a.kind, "explainer": a.explainer, "params": a.params, "seed": a.seed,
             "param_hash": a.param_hash}
            for a in study.arms.order_by("code")
        ],
        "questions": [
            {"key": q.key, "kind": q.kind, "text": q.text, "options": q.options, "scale": q.scale,
             "points": q.points, "anchors": q.anchors, "applies_to": q.applies_to, "stage": q.stage,
             "required": q.required}
            for q in study.questions.all()
        ],
        "cases": cases,
        "empty_explanations": [
            {"arm": row["arm"], "case_id": row["case_id"]} for row in study_empty_explanations(study=study)
        ],
    }


BLINDED_KIND = "explanation"


def arm_blinded_kind(*, kind: str, study: Study) -> str:
    """The arm kind a coordinator may see: the real kind in a draft; once the study opened,
    `explanation` for both the explainer and the placebo arms."""
    if study.status != Study.Status.DRAFT and kind in (Arm.Kind.AI_EXPLAINER, Arm.Kind.PLACEBO):
        return BLINDED_KIND
    return kind


def arm_condition(*, arm: Arm, study: Study) -> str:
    """What the coordinator sees of an arm: its condition while the study is a draft (they are
    configuring it), only its kind once the configuration is frozen."""
    if study.status == Study.Status.DRAFT and arm.explainer:
        return f"{Arm.Kind(arm.kind).label}: {arm.explainer}"
    return Arm.Kind(arm.kind).label if arm.kind in (Arm.Kind.UNAIDED, Arm.Kind.AI) else "AI prediction and explanation"


# Case selection (the coordinator's case page) ------------------------------------------------

AVAILABLE_CASES_SHOWN = 200


def study_case_splits(*, study: Study) -> list[dict]:
    """The splits of the study's collections with their case counts, by name ("" = no split)."""
    from library.models import Case

    rows = (
        Case.objects.filter(collection__in=study.collections.all())
        .values("split").annotate(cases=Count("id")).order_by("split")
    )
    return [{"split": row["split"], "cases": row["cases"]} for row in rows]


def _case_facts(*, study: Study, cases: list) -> list[dict]:
    """Key, split, ground truth and the AI's prediction and correctness of these cases (what a
    coordinator choosing cases needs; it says nothing about arms)."""
    ids = [case.pk for case in cases]
    labels: dict[int, dict[str, int]] = {pk: {} for pk in ids}
    for case_id, name, value in CaseLabel.objects.filter(case_id__in=ids).values_list("case_id", "name", "value"):
        labels[case_id][name] = value
    predictions = (
        {p.case_id: p for p in Prediction.objects.filter(model=study.model, case_id__in=ids)} if study.model_id else {}
    )
    correctness = case_ai_correctness(model=study.model, case_ids=ids) if study.model_id else {}
    rows = []
    for case in cases:
        found = sorted(name for name, value in labels[case.pk].items() if value == CaseLabel.POSITIVE)
        uncertain = sorted(name for name, value in labels[case.pk].items() if value == CaseLabel.UNCERTAIN)
        prediction = predictions.get(case.pk)
        rows.append(
            {
                "case_id": case.pk,
                "key": case.key,
                "split": case.split,
                "truth": ", ".join(found) + (f" (uncertain: {', '.join(uncertain)})" if uncertain else ""),
                "prediction": prediction.predicted_class if prediction else "",
                "probability": prediction.positive_probability if prediction else None,
                "ai_correct": correctness.get(case.pk),
            }
        )
    return rows


def study_case_rows(*, study: Study) -> list[dict]:
    """The chosen cases, by role then key, each with its facts (`_case_facts`) and `role`."""
    chosen = list(study.study_cases.select_related("case"))
    order = {role: index for index, role in enumerate(StudyCase.Role.values)}
    chosen.sort(key=lambda sc: (order[sc.role], sc.case.key))
    roles = {sc.case_id: sc.role for sc in chosen}
    rows = _case_facts(study=study, cases=[sc.case for sc in chosen])
    for row in rows:
        row["role"] = roles[row["case_id"]]
        row["role_label"] = StudyCase.Role(row["role"]).label
    return rows


def study_available_cases(*, study: Study, split: str | None = None, limit: int = AVAILABLE_CASES_SHOWN) -> dict:
    """Cases of the study's collections not chosen yet (optionally of one split), by key: at most
    `limit` rows with their facts, and how many there are in all."""
    from library.models import Case

    cases = Case.objects.filter(collection__in=study.collections.all()).exclude(
        pk__in=study.study_cases.values("case_id")
    )
    if split is not None:
        cases = cases.filter(split=split)
    total = cases.count()
    shown = list(cases.order_by("key", "pk")[:limit])
    return {"rows": _case_facts(study=study, cases=shown), "total": total, "shown": len(shown)}


def study_empty_explanation_rows(*, study: Study) -> list[dict]:
    """`study_empty_explanations` as the coordinator's readiness page shows them: one row per
    case (the arms listed only while the study is a draft; afterwards they could unblind)."""
    rows: dict[int, dict] = {}
    for item in study_empty_explanations(study=study):
        row = rows.setdefault(
            item["case_id"],
            {"case_id": item["case_id"], "case_key": item["case_key"], "role": item["role"], "arms": []},
        )
        row["arms"].append(item["arm"])
    if study.status != Study.Status.DRAFT:
        for row in rows.values():
            row["arms"] = []
    return list(rows.values())


# Sessions and progress ----------------------------------------------------------------------


def session_unlocks_at(*, session: ReadingSession, previous: ReadingSession | None, enrolled_at):
    """When a session becomes available: the first on enrollment; a later one when the one before
    it is complete and, if it starts a new washout period, `washout` days after that completion."""
    if previous is None:
        return enrolled_at if session.index == 0 else None
    if previous.completed_at is None:
        return None
    gap = session.unlock_after_days - previous.unlock_after_days
    return previous.completed_at + timedelta(days=max(gap, 0))


def enrollment_sessions(*, enrollment: Enrollment) -> list[dict]:
    sessions = list(
        enrollment.sessions.annotate(
            total=Count("trials"), done=Count("trials", filter=Q(trials__completed_at__isnull=False))
        ).order_by("index")
    )
    now = timezone.now()
    rows, previous = [], None
    for session in sessions:
        unlocks_at = session_unlocks_at(
            session=session, previous=previous, enrolled_at=enrollment.enrolled_at
        )
        rows.append(
            {
                "index": session.index,
                "trials": session.total,
                "done": session.done,
                "unlocks_at": unlocks_at,
                "unlocked": unlocks_at is not None and unlocks_at <= now,
                "completed_at": session.completed_at,
            }
        )
        previous = session
    return rows


def study_progress(*, study: Study) -> list[dict]:
    """Per enrolled reader: trials done, sessions unlocked and done, last activity."""
    enrollments = (
        study.enrollments.select_related("reader")
        .annotate(
            trials_total=Count("sessions__trials", distinct=True),
            trials_done=Count(
                "sessions__trials", filter=Q(sessions__trials__completed_at__isnull=False), distinct=True
            ),
            last_trial=Max("sessions__trials__completed_at"),
        )
        .order_by("reader_index")
    )
    rows = []
    for enrollment in enrollments:
        sessions = enrollment_sessions(enrollment=enrollment)
        rows.append(
            {
                "reader": enrollment.reader.get_username(),
                "reader_index": enrollment.reader_index,
                "trials_total": enrollment.trials_total,
                "trials_done": enrollment.trials_done,
                "sessions_total": len(sessions),
                "sessions_unlocked": sum(1 for s in sessions if s["unlocked"]),
                "sessions_done": sum(1 for s in sessions if s["completed_at"]),
                "last_activity": enrollment.last_activity_at or enrollment.last_trial,
                "consented": enrollment.consented_at is not None,
            }
        )
    return rows


def study_readers(*, study: Study) -> list[dict]:
    """Readers with the reader role, enrolled or waiting for the study to open."""
    enrolled = {e.reader_id: e for e in study.enrollments.all()}
    rows = []
    for member in study.roles.filter(role=StudyRole.Role.READER).select_related("user__reader_profile"):
        profile = getattr(member.user, "reader_profile", None)
        rows.append(
            {
                "username": member.user.get_username(),
                "enrolled": member.user_id in enrolled,
                "years_experience": profile.years_experience if profile else None,
                "specialty": profile.specialty if profile else "",
                "is_radiologist": profile.is_radiologist if profile else None,
            }
        )
    return rows


def study_responses(*, study: Study, limit: int | None = None) -> list[dict]:
    """Stored responses, newest first, as the coordinator sees them: arms as codes only."""
    from studies.models import Response

    responses = (
        Response.objects.filter(trial__session__enrollment__study=study)
        .select_related("trial__session__enrollment__reader", "trial__arm", "trial__case")
        .order_by("-submitted_at", "-pk")
    )
    if limit:
        responses = responses[:limit]
    return [
        {
            "reader": r.trial.session.enrollment.reader.get_username(),
            "session": r.trial.session.index + 1,
            "position": r.trial.position + 1,
            "case": r.trial.case.key,
            "arm": r.trial.arm.code,
            "kind": r.trial.kind,
            "stage": r.stage,
            "answers": r.answers,
            "seconds": r.seconds_on_stage,
            "submitted_at": r.submitted_at,
        }
        for r in responses
    ]


# The study's audit trail --------------------------------------------------------------------

AUDIT_CSV_HEADER = (
    "at", "actor", "ip", "action", "object_type", "object_id", "object", "before", "after",
)
_ARM_DETAILS = ("explainer", "params", "param_hash", "seed")


def audit_entries_for_study(
    *, study: Study, action: str = "", actor: str = "", since=None, until=None
) -> QuerySet:
    """The study's audit rows, newest first; optionally one action, one actor (username) and
    a date range (`since`/`until`: dates, both days included, in the site's time zone)."""
    from datetime import datetime, time

    from core.models import AuditEntry

    entries = AuditEntry.objects.filter(study_id=study.pk)
    if action:
        entries = entries.filter(action=action)
    if actor:
        entries = entries.filter(actor_repr=actor)
    zone = timezone.get_current_timezone()
    if since is not None:
        entries = entries.filter(at__gte=datetime.combine(since, time.min, tzinfo=zone))
    if until is not None:
        entries = entries.filter(at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone))
    return entries.order_by("-at", "-pk")


def audit_filter_choices(*, study: Study) -> dict[str, list[str]]:
    """The actions and actors that occur in the study's trail (for the filter form)."""
    from core.models import AuditEntry

    rows = AuditEntry.objects.filter(study_id=study.pk)
    return {
        "actions": sorted(set(rows.values_list("action", flat=True).distinct())),
        "actors": sorted(set(rows.values_list("actor_repr", flat=True).distinct())),
    }


def _blind_arms(value):
    """An audit detail with every arm's condition replaced by what coordinators see of an open
    study: its code and blinded kind (explainers and parameters would unblind the arms)."""
    if isinstance(value, list):
        return [_blind_arms(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "code" in value and "kind" in value and "explainer" in value:  # an arm's state
        kind = value["kind"]
        blinded = BLINDED_KIND if kind in (Arm.Kind.AI_EXPLAINER, Arm.Kind.PLACEBO) else kind
        return {
            **{k: v for k, v in value.items() if k not in _ARM_DETAILS},
            "kind": blinded,
        }
    return {key: _blind_arms(item) for key, item in value.items()}


def audit_entry_details(*, entry, study: Study) -> tuple:
    """(before, after) of an audit row as the study's trail shows them: once the study is no
    longer a draft, arm conditions are blinded (only the statistician's audited reveal shows
    them), as on every other page."""
    if study.status == Study.Status.DRAFT:
        return entry.before, entry.after
    return _blind_arms(entry.before), _blind_arms(entry.after)


def _json_cell(value) -> str:
    import json

    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _csv_safe(value: str) -> str:
    """Text a spreadsheet will not run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def audit_rows(*, entries, study: Study):
    """The rows of the trail as text, one tuple per entry in AUDIT_CSV_HEADER order (for the
    CSV export; spreadsheet formulas are neutralised). Iterates the queryset in chunks."""
    for entry in entries.iterator(chunk_size=1000):
        before, after = audit_entry_details(entry=entry, study=study)
        cells = (
            entry.at.isoformat(), entry.actor_repr, entry.ip or "", entry.action, entry.object_type,
            entry.object_id, entry.object_repr, _json_cell(before), _json_cell(after),
        )
        yield tuple(_csv_safe(cell) for cell in cells)


def audit_page_rows(*, entries, study: Study) -> list[dict]:
    """One page of the trail for display."""
    rows = []
    for entry in entries:
        before, after = audit_entry_details(entry=entry, study=study)
        rows.append({
            "at": entry.at, "actor": entry.actor_repr, "ip": entry.ip, "action": entry.action,
            "object": entry.object_repr, "before": _json_cell(before), "after": _json_cell(after),
        })
    return rows
