"""A study's lifecycle (draft -> open -> closed), enrollment with frozen schedules, and the
statistician's audited reveal of what each arm is."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core import audit
from core.errors import ServiceError
from studies import randomization
from studies.models import Arm, Enrollment, ReadingSession, Study, StudyCase, StudyRole, Trial
from studies.selectors.checklist import study_problems, study_warnings
from studies.selectors.snapshot import study_config_snapshot
from studies.selectors.truth import study_strata
from studies.services.drafts import locked_study


def study_open(*, acting_user, study: Study) -> Study:
    """Open a valid draft: freeze its configuration and enroll the readers already added.

    Refused, listing every problem, while anything is missing (arms, questions, cases,
    precomputed predictions and explanations...). Warnings (`selectors.study_warnings`) do not
    stop it; the ones the coordinator opened it with are recorded in the audit row.
    """
    with transaction.atomic():
        study = locked_study(study)
        if study.status != Study.Status.DRAFT:
            raise ServiceError(f"study '{study.title}' is already {study.status}")
        problems = study_problems(study=study)
        if problems:
            raise ServiceError(problems)
        warnings = study_warnings(study=study)
        study.frozen_config = study_config_snapshot(study=study)
        study.status = Study.Status.OPEN
        study.opened_at = timezone.now()
        study.save(update_fields=["frozen_config", "status", "opened_at"])
        audit.record(
            acting_user=acting_user,
            action="study.open",
            obj=study,
            study=study,
            before={"status": Study.Status.DRAFT},
            after={"status": study.status, "config": study.frozen_config, "warnings": warnings},
        )
        readers = (
            study.roles.filter(role=StudyRole.Role.READER)
            .select_related("user")
            .order_by("added_at", "pk")
        )
        for member in readers:
            reader_enroll(acting_user=acting_user, study=study, reader=member.user)
    return study


def study_close(*, acting_user, study: Study) -> Study:
    """Close an open study: no new reads start; what was read stays."""
    with transaction.atomic():
        study = locked_study(study)
        if study.status != Study.Status.OPEN:
            raise ServiceError(
                f"only an open study can be closed; '{study.title}' is {study.status}"
            )
        study.status = Study.Status.CLOSED
        study.closed_at = timezone.now()
        study.save(update_fields=["status", "closed_at"])
        audit.record(
            acting_user=acting_user,
            action="study.close",
            obj=study,
            study=study,
            before={"status": Study.Status.OPEN},
            after={"status": study.status},
        )
    return study


def _schedule_inputs(study: Study) -> dict:
    roles: dict[str, list[int]] = {role: [] for role in StudyCase.Role.values}
    for case_id, role in study.study_cases.order_by("case_id").values_list("case_id", "role"):
        roles[role].append(case_id)
    strata = study_strata(study=study, case_ids=roles[StudyCase.Role.MAIN])
    return {
        "design": study.design,
        "cases": roles[StudyCase.Role.MAIN],
        "arms": list(study.arms.order_by("code").values_list("code", flat=True)),
        "seed": study.seed,
        "sessions": study.sessions,
        "washout_days": study.washout_days,
        "strata": strata,
        "training_cases": roles[StudyCase.Role.TRAINING],
        "attention_cases": roles[StudyCase.Role.ATTENTION],
    }


def reader_enroll(*, acting_user, study: Study, reader) -> Enrollment:
    """Enroll a reader in an open study: generate their schedule once, from the study's seed and
    their enrollment index, and store it with its sessions and trials. Enrolling twice returns
    the existing enrollment; the schedule is never regenerated."""
    with transaction.atomic():
        study = locked_study(study)
        existing = Enrollment.objects.filter(study=study, reader=reader).first()
        if existing is not None:
            return existing
        if study.status != Study.Status.OPEN:
            raise ServiceError(
                f"readers are enrolled when the study opens; '{study.title}' is {study.status}"
            )
        index = (
            (study.enrollments.aggregate(m=Max("reader_index"))["m"] + 1)
            if study.enrollments.exists()
            else 0
        )
        try:
            schedule = randomization.generate_schedule(
                reader_index=index, **_schedule_inputs(study)
            )
        except randomization.ScheduleError as exc:
            raise ServiceError(exc.problems) from exc
        StudyRole.objects.get_or_create(study=study, user=reader, role=StudyRole.Role.READER)
        try:
            with transaction.atomic():
                enrollment = Enrollment.objects.create(
                    study=study,
                    reader=reader,
                    reader_index=index,
                    seed=study.seed,
                    algorithm=schedule.algorithm,
                    schedule=schedule.to_dict(),
                )
        except IntegrityError:
            return Enrollment.objects.get(study=study, reader=reader)
        arms = {arm.code: arm for arm in study.arms.all()}
        trials = []
        for planned in schedule.sessions:
            session = ReadingSession.objects.create(
                enrollment=enrollment,
                index=planned.index,
                period=planned.period,
                unlock_after_days=planned.unlock_after_days,
            )
            trials += [
                Trial(
                    session=session,
                    position=t.position,
                    case_id=t.case,
                    arm=arms[t.arm],
                    kind=t.kind,
                )
                for t in planned.trials
            ]
        Trial.objects.bulk_create(trials)
        audit.record(
            acting_user=acting_user,
            action="study.enroll",
            obj=study,
            study=study,
            after={
                "reader": reader.get_username(),
                "reader_index": index,
                "seed": study.seed,
                "algorithm": schedule.algorithm,
                "sessions": len(schedule.sessions),
                "trials": len(trials),
            },
        )
    return enrollment


def study_arms_reveal(*, acting_user, study: Study) -> list[dict]:
    """What each arm is, for the study's statistician only. Every reveal is audited."""
    if not StudyRole.objects.filter(
        study=study, user=acting_user, role=StudyRole.Role.STATISTICIAN
    ).exists():
        raise PermissionError(
            "only the study's statistician can see which condition an arm is; a site admin who must"
            " unblind the study assigns themselves its statistician first (recorded in the audit trail)"
        )
    arms = [
        {
            "code": arm.code,
            "kind": arm.kind,
            "kind_label": Arm.Kind(arm.kind).label,
            "explainer": arm.explainer,
            "params": arm.params,
            "seed": arm.seed,
            "param_hash": arm.param_hash,
        }
        for arm in study.arms.order_by("code")
    ]
    with transaction.atomic():
        audit.record(
            acting_user=acting_user,
            action="study.arms_reveal",
            obj=study,
            study=study,
            after={"arms": [arm["code"] for arm in arms]},
        )
    return arms
