"""The ready-made demo study: four arms on the demo collection, open, with demo readers.

Built through the same services a coordinator uses, so the demo exercises the real path.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from core.errors import ServiceError
from explain.models import ClassifierModel, Prediction
from library.models import Collection
from studies import services
from studies.models import Enrollment, ReaderProfile, ReadingSession, Response, Study, Trial
from studies.selectors import questions_for, trial_stages
from studies.services.reading import enrollment_consent, trial_answer, trial_reveal, trial_show

DEMO_STUDY_TITLE = "Demo: do heatmaps help readers find lung nodules?"
DEMO_READERS = ("reader1", "reader2", "reader3")
DEMO_STATISTICIAN = "statistician"
DEMO_MAIN_CASES = 24
# A coarse occlusion (32-pixel patches, stride 16) keeps the perturbation arm quick to precompute.
DEMO_OCCLUSION = {"window": 32, "stride": 16}
DEMO_ARMS = (
    ("unaided", "", None),
    ("ai_explainer", "gradcam", None),
    ("ai_explainer", "occlusion", DEMO_OCCLUSION),
    ("placebo", "gradcam", None),
)

DEMO_READER_TITLE = "Chest radiograph reading: lung nodules"
DEMO_READER_DESCRIPTION = (
    "You will read synthetic chest radiographs and decide whether each shows a lung nodule. "
    "For some cases you will also see the output of an AI system."
)
CONSENT = (
    "This is a demonstration study with synthetic images. Your answers are stored under your account "
    "name and used only to show the platform's analysis. You may stop at any time."
)
INSTRUCTIONS = (
    "Each case is a synthetic chest radiograph. Decide whether it shows a lung nodule and say how "
    "confident you are. In some cases you will first answer on your own and then see the AI's "
    "output before giving your final answer."
)


def _demo_study_fields(model: ClassifierModel, collection: Collection) -> dict:
    """What the demo study and the simulated one share: texts, model, cases and design."""
    return {
        "reader_title": DEMO_READER_TITLE,
        "reader_description": DEMO_READER_DESCRIPTION,
        "model": model,
        "collections": [collection],
        "consent_text": CONSENT,
        "instructions": INSTRUCTIONS,
        "design": Study.Design.LATIN_SQUARE,
        "protocol": Study.Protocol.TWO_STAGE,
    }


def demo_study_get() -> Study | None:
    return Study.objects.filter(title=DEMO_STUDY_TITLE).order_by("pk").first()


def demo_study_build(
    *,
    coordinator,
    model: ClassifierModel,
    collection: Collection,
    main_cases: int = DEMO_MAIN_CASES,
    training_cases: int = 2,
    attention_cases: int = 2,
    progress=print,
) -> Study:
    """Create, configure, precompute and open the demo study (or return it if it exists)."""
    existing = demo_study_get()
    if existing is not None and existing.status != Study.Status.DRAFT:
        progress(f"demo study: already {existing.status}")
        return existing
    study = existing or services.study_create(
        acting_user=coordinator,
        title=DEMO_STUDY_TITLE,
        description="Unaided reading against AI with Grad-CAM, AI with occlusion, and AI with a placebo heatmap.",
        **_demo_study_fields(model, collection),
        sessions=2,
    )
    # Each step is idempotent, so a run interrupted half-way is completed by the next one.
    for kind, explainer, params in DEMO_ARMS:
        if not study.arms.filter(kind=kind, explainer=explainer).exists():
            services.arm_add(
                acting_user=coordinator, study=study, kind=kind, explainer=explainer, params=params
            )
    services.questions_add_defaults(acting_user=coordinator, study=study)
    if not study.study_cases.exists():
        services.study_cases_select(
            acting_user=coordinator,
            study=study,
            split="test",
            main_count=main_cases,
            training_count=training_cases,
            attention_count=attention_cases,
        )
    User = get_user_model()
    people = [(DEMO_STATISTICIAN, "statistician")] + [(name, "reader") for name in DEMO_READERS]
    for username, role in people:
        user = User.objects.filter(username=username).first()
        if user is not None:
            services.study_role_add(acting_user=coordinator, study=study, user=user, role=role)
    progress("demo study: precomputing what its arms show")
    services.study_precompute(acting_user=coordinator, study=study)
    try:
        services.study_open(acting_user=coordinator, study=study)
    except ServiceError as exc:
        progress("demo study: cannot open yet: " + "; ".join(exc.problems))
        return study
    progress(f"demo study: open with {study.enrollments.count()} enrolled readers")
    return study


# A second demo study, already read by simulated readers and closed, so that the analysis and
# its report have data to show on the first `make demo`. Demo only: its answers come from a
# seeded model of readers, and its reading times are set afterwards (marked in the title).
SIMULATED_TITLE = "Demo (simulated readers): heatmaps and reliance"
SIMULATED_READERS = 6


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _simulated_answers(study: Study, trial, stage: str, value: float, rng) -> dict:
    out = {}
    for q in questions_for(study=study, trial=trial, stage=stage):
        if q.kind == "diagnosis":
            out[q.key] = study.model.positive_class if value >= 0 else q.options[0]
        elif q.kind == "confidence":
            out[q.key] = int(round(100 * _sigmoid(value)))
        elif q.kind == "likert":
            base = 3.9 if trial.arm.kind == "ai_explainer" else 3.0
            out[q.key] = max(1, min(5, int(round(rng.gauss(base, 0.9)))))
    return out


def _simulated_timeline(study: Study, readers: int) -> list:
    """Demo only: the simulated study is read in the past, one reader a day, so that every time
    stamp lies between its (back-dated) opening and its closing, which happens now."""
    opened = timezone.now() - timedelta(days=readers + 1)
    Study.objects.filter(pk=study.pk).update(opened_at=opened)
    return [opened + timedelta(days=index, hours=9) for index in range(readers)]


def _simulate_reading_times(enrollment, *, start, rng, seconds: dict) -> None:
    """Demo only: spread one reader's trials out from ``start`` as a reader would read them."""
    clock = start
    trials = Trial.objects.filter(session__enrollment=enrollment).select_related("arm")
    for trial in trials.order_by("session__index", "position"):
        duration = rng.lognormvariate(math.log(seconds[trial.arm.kind]), 0.35)
        started, done = clock, clock + timedelta(seconds=duration)
        revealed = started + timedelta(seconds=duration * 0.55) if trial.revealed_at else None
        Trial.objects.filter(pk=trial.pk).update(
            started_at=started, first_answered_at=revealed, revealed_at=revealed, completed_at=done
        )
        for response in Response.objects.filter(trial=trial):
            submitted, since = (
                (revealed, started) if response.stage == "first" else (done, revealed or started)
            )
            Response.objects.filter(pk=response.pk).update(
                submitted_at=submitted, seconds_on_stage=(submitted - since).total_seconds()
            )
        clock = done + timedelta(seconds=rng.uniform(2, 6))
    for session in ReadingSession.objects.filter(enrollment=enrollment):
        times = session.trials.order_by("position").values_list("started_at", "completed_at")
        if times:
            ReadingSession.objects.filter(pk=session.pk).update(
                started_at=times[0][0], completed_at=times[len(times) - 1][1]
            )
    Enrollment.objects.filter(pk=enrollment.pk).update(
        enrolled_at=start - timedelta(hours=1),
        consented_at=start - timedelta(minutes=5),
        started_at=start,
        last_activity_at=clock,
    )


SIMULATED_WEIGHT = {"unaided": 0.0, "ai": 0.7, "ai_explainer": 1.0, "placebo": 0.8}
"""How much a simulated reader's final call leans on the AI's logit, by arm kind."""
SIMULATED_SECONDS = {"unaided": 28.0, "ai": 24.0, "ai_explainer": 26.0, "placebo": 27.0}


def _simulated_study_open(*, coordinator, model, collection, main_cases: int) -> Study:
    """The simulated study, created with the demo's arms and questions, precomputed and open."""
    study = services.study_create(
        acting_user=coordinator,
        title=SIMULATED_TITLE,
        description="Read by simulated readers (a seeded model of reader behaviour), for the analysis demo.",
        **_demo_study_fields(model, collection),
        sessions=1,
    )
    for kind, explainer, params in DEMO_ARMS:
        services.arm_add(
            acting_user=coordinator, study=study, kind=kind, explainer=explainer, params=params
        )
    services.questions_add_defaults(acting_user=coordinator, study=study)
    services.study_cases_select(
        acting_user=coordinator, study=study, split="test", main_count=main_cases
    )
    services.study_precompute(acting_user=coordinator, study=study)
    services.study_open(acting_user=coordinator, study=study)
    return study


def _simulated_reader(*, coordinator, study: Study, index: int):
    """Simulated reader `index`: a user with a profile, enrolled and consented."""
    user, _ = get_user_model().objects.get_or_create(username=f"sim-reader-{index + 1}")
    user.set_unusable_password()
    user.save()
    ReaderProfile.objects.update_or_create(
        user=user,
        defaults={
            "years_experience": [1, 3, 5, 8, 12, 20][index % 6],
            "specialty": "radiology",
            "is_radiologist": index % 6 != 0,
        },
    )
    enrollment = services.reader_enroll(acting_user=coordinator, study=study, reader=user)
    enrollment_consent(
        acting_user=user, enrollment=enrollment, consent_version=study.consent_version
    )
    return user, enrollment


def _simulate_trials(*, user, enrollment, study, model, skill, predictions, rng) -> None:
    """Read every trial of the enrollment: a latent call from the truth, the reader's skill
    and noise, moved towards the AI's logit by the arm's weight."""
    trials = list(
        Trial.objects.filter(session__enrollment=enrollment)
        .select_related("arm", "case")
        .order_by("session__index", "position")
    )
    for trial in trials:
        truth = trial.case.labels.filter(name=model.positive_class, value=1).exists()
        latent = (1.0 + skill) * (1 if truth else -1) + rng.gauss(0, 1.1)
        ai_p = min(max(predictions.get(trial.case_id, 0.5), 1e-3), 1 - 1e-3)
        lean = SIMULATED_WEIGHT[trial.arm.kind] * math.log(ai_p / (1 - ai_p)) * 0.6
        trial_show(acting_user=user, trial=trial)
        if len(trial_stages(trial=trial, study=study)) == 2:
            trial_answer(
                acting_user=user,
                trial=trial,
                stage="first",
                answers=_simulated_answers(study, trial, "first", latent, rng),
                client_key=uuid.uuid4(),
            )
            trial_reveal(acting_user=user, trial=trial)
        trial_answer(
            acting_user=user,
            trial=trial,
            stage="final",
            answers=_simulated_answers(study, trial, "final", latent + lean, rng),
            client_key=uuid.uuid4(),
            interactions={"window_changes": rng.randint(0, 4)},
        )


def demo_simulated_study_build(
    *,
    coordinator,
    model: ClassifierModel,
    collection: Collection,
    main_cases: int = DEMO_MAIN_CASES,
    readers: int = SIMULATED_READERS,
    seed: int = 11,
    progress=print,
) -> Study:
    """Create, open, read (with simulated readers) and close the simulated demo study."""
    finished = (
        Study.objects.filter(title=SIMULATED_TITLE, status=Study.Status.CLOSED)
        .order_by("pk")
        .first()
    )
    if finished is not None:
        progress("simulated demo study: already read and closed")
        return finished
    if Study.objects.filter(title=SIMULATED_TITLE).exists():  # an interrupted earlier run
        progress(
            "simulated demo study: an unfinished earlier run is left as it was; building a new one"
        )
    study = _simulated_study_open(
        coordinator=coordinator, model=model, collection=collection, main_cases=main_cases
    )
    rng = random.Random(seed)
    timeline = _simulated_timeline(study, readers)
    predictions = {
        p.case_id: p.positive_probability for p in Prediction.objects.filter(model=model)
    }
    for index in range(readers):
        user, enrollment = _simulated_reader(coordinator=coordinator, study=study, index=index)
        _simulate_trials(
            user=user,
            enrollment=enrollment,
            study=study,
            model=model,
            skill=0.4 + 0.15 * (index % 6),
            predictions=predictions,
            rng=rng,
        )
        _simulate_reading_times(
            enrollment, start=timeline[index], rng=rng, seconds=SIMULATED_SECONDS
        )
        progress(f"simulated demo study: reader {index + 1} of {readers} done")
    services.study_close(acting_user=coordinator, study=study)
    return study
