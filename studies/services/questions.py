"""Configuring a draft study's questions: add, change, move, remove, and the default Likert set."""

from __future__ import annotations

import re

from django.db import transaction
from django.db.models import Max

from core import audit
from core.errors import ServiceError
from studies.models import Question, Study
from studies.services.drafts import locked_study, require_draft

CONFIDENCE_SCALES = ("slider100", "scale5", "scale7")
LIKERT_POINTS = (5, 7)
# The fixed answers to an advice question, in this order (the words the reader sees).
ADVICE_OPTIONS = ("accept", "modify", "reject")
ORDINAL_LABELS = (2, 10)  # the fewest and most categories of an ordered-category question
# Kinds asked at every stage by default (the others: at the final stage only).
EVERY_STAGE_KINDS = (
    Question.Kind.DIAGNOSIS,
    Question.Kind.CONFIDENCE,
    Question.Kind.PROBABILITY,
    Question.Kind.ORDINAL,
)
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_KEYS = frozenset({"defaults"})  # taken by URLs

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


def _question_values(study: Study, values: dict) -> tuple[dict, list[str]]:
    """Normalise and check one question's fields; returns (values, problems)."""
    problems: list[str] = []
    kind = values.get("kind")
    label = values.get("key") or kind or "question"
    if kind not in Question.Kind.values:
        return values, [
            f"question {label}: unknown kind {kind!r}; choose one of {', '.join(Question.Kind.values)}"
        ]
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
    options = _options(study, kind, label, values.get("options") or [], problems)
    scale = values.get("scale") or ""
    if kind == Question.Kind.CONFIDENCE:
        scale = scale or "slider100"
        if scale not in CONFIDENCE_SCALES:
            problems.append(
                f"question {label}: confidence scale must be one of {', '.join(CONFIDENCE_SCALES)}"
            )
    elif scale:
        problems.append(f"question {label}: only confidence questions have a scale")
    points, anchors = _likert_scale(kind, label, values, problems)
    applies_to, stage = _where_asked(kind, label, values, problems)
    normalised = {
        "key": key,
        "kind": kind,
        "text": str(values.get("text") or "").strip(),
        "help_text": str(values.get("help_text") or "").strip(),
        "options": options,
        "scale": scale if kind == Question.Kind.CONFIDENCE else "",
        "points": points,
        "anchors": anchors,
        "applies_to": applies_to,
        "stage": stage,
        "required": bool(values.get("required", kind != Question.Kind.FREE_TEXT)),
    }
    return normalised, problems


def _options(study: Study, kind: str, label: str, given: list, problems: list[str]) -> list[str]:
    """The options of a question of `kind` (diagnosis: defaults to the model's labels; advice:
    the fixed ADVICE_OPTIONS; ordinal: the ordered category labels; other kinds: none); what
    is wrong with them is added to `problems`."""
    options = [str(o).strip() for o in given if str(o).strip()]
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
        return options
    if kind == Question.Kind.ADVICE:
        if options and options != list(ADVICE_OPTIONS):
            problems.append(
                f"question {label}: the answers to an advice question are fixed"
                f" ({', '.join(ADVICE_OPTIONS)}); give no options"
            )
        return list(ADVICE_OPTIONS)
    if kind == Question.Kind.ORDINAL:
        low, high = ORDINAL_LABELS
        if len(options) != len(given):
            problems.append(f"question {label}: a category label cannot be empty")
        if not low <= len(options) <= high:
            problems.append(
                f"question {label}: an ordered-category question needs {low} to {high} category"
                f" labels, in order (lowest first), not {len(options)}"
            )
        elif len(set(options)) != len(options):
            problems.append(
                f"question {label}: the category labels must be different from each other"
            )
        return options
    if options:
        problems.append(
            f"question {label}: only diagnosis and ordered-category questions have options"
        )
    return []


def _where_asked(kind: str, label: str, values: dict, problems: list[str]) -> tuple[str, str]:
    """(applies_to, stage) of a question, with the kind's defaults; an advice question is about
    the AI output, so it is asked only in arms that show it and only at the final stage."""
    advice = kind == Question.Kind.ADVICE
    default_arms = Question.AppliesTo.AI if advice else Question.AppliesTo.ALL
    applies_to = values.get("applies_to") or default_arms
    if applies_to not in Question.AppliesTo.values:
        problems.append(
            f"question {label}: applies_to must be one of {', '.join(Question.AppliesTo.values)}"
        )
    elif advice and applies_to == Question.AppliesTo.ALL:
        problems.append(
            f"question {label}: an advice question is about the AI output, so it applies only to"
            " arms that show the AI (choose ai, explanation or heatmap, not every arm)"
        )
    stage = values.get("stage") or (
        Question.Stage.EVERY if kind in EVERY_STAGE_KINDS else Question.Stage.FINAL
    )
    if stage not in Question.Stage.values:
        problems.append(
            f"question {label}: stage must be one of {', '.join(Question.Stage.values)}"
        )
    elif advice and stage != Question.Stage.FINAL:
        problems.append(
            f"question {label}: an advice question is asked only at the final stage, once the AI"
            " output is shown (not at every stage)"
        )
    return applies_to, stage


def _likert_scale(kind: str, label: str, values: dict, problems: list[str]) -> tuple:
    """(points, anchors) of a Likert item (defaults filled in; other kinds: None and []);
    what is wrong with them is added to `problems`."""
    points = values.get("points")
    anchors = [str(a).strip() for a in (values.get("anchors") or [])]
    if kind != Question.Kind.LIKERT:
        if points:
            problems.append(f"question {label}: only Likert items have points")
        if anchors:
            problems.append(f"question {label}: only Likert items have anchors")
        return None, []
    points = points or 5
    if points not in LIKERT_POINTS:
        problems.append(f"question {label}: a Likert item has 5 or 7 points, not {points}")
    anchors = anchors or list(DEFAULT_ANCHORS)
    if len(anchors) != 2 or not all(anchors):
        problems.append(f"question {label}: a Likert item needs two anchors (lowest and highest)")
    return points, anchors


# The fields that belong to one question kind only, and their empty value.
KIND_FIELDS = {
    "options": ((Question.Kind.DIAGNOSIS, Question.Kind.ORDINAL), []),
    "scale": ((Question.Kind.CONFIDENCE,), ""),
    "points": ((Question.Kind.LIKERT,), None),
    "anchors": ((Question.Kind.LIKERT,), []),
}


def _rank_column_clash(study: Study, values: dict, question: Question | None = None) -> list[str]:
    """An ordinal question `x` has two export columns, answer_x and answer_x_rank: no other
    question's key may be `x_rank` (nor may an ordinal question be named after one that is)."""
    others = study.questions.exclude(pk=question.pk) if question else study.questions.all()
    key = values["key"]
    if values["kind"] == Question.Kind.ORDINAL and others.filter(key=f"{key}_rank").exists():
        return [f"question {key}: its rank column would clash with question {key}_rank"]
    base = key.removesuffix("_rank")
    if base != key and others.filter(key=base, kind=Question.Kind.ORDINAL).exists():
        return [f"question {key}: the key is taken by the rank column of question {base}"]
    return []


def _question_state(question: Question) -> dict:
    return {field: getattr(question, field) for field in Question.CONFIGURED_FIELDS}


def question_add(*, acting_user, study: Study, **values) -> Question:
    """Add a question. Kinds: diagnosis, confidence, likert, free_text, probability (0-100,
    no default position), advice (accept/modify/reject the AI output: AI arms, final stage) and
    ordinal (2-10 ordered category labels, e.g. BI-RADS)."""
    with transaction.atomic():
        study = locked_study(study)
        require_draft(study)
        normalised, problems = _question_values(study, values)
        if not problems and study.questions.filter(key=normalised["key"]).exists():
            problems.append(f"the study already has a question with key {normalised['key']!r}")
        problems += [] if problems else _rank_column_clash(study, normalised)
        if problems:
            raise ServiceError(problems)
        order = (study.questions.aggregate(m=Max("order"))["m"] or 0) + 1
        question = Question.objects.create(study=study, order=order, **normalised)
        audit.record(
            acting_user=acting_user,
            action="study.question_add",
            obj=study,
            study=study,
            after=_question_state(question),
        )
    return question


def question_update(*, acting_user, question: Question, **changes) -> Question:
    with transaction.atomic():
        study = locked_study(question.study)
        require_draft(study)
        before = _question_state(question)
        merged = {**before, **changes}
        for field, (kinds, empty) in KIND_FIELDS.items():
            # a field of the old kind, not given again, does not belong to a new kind (nor do
            # an advice question's fixed answers)
            if field not in changes and (
                merged.get("kind") not in kinds or before["kind"] == Question.Kind.ADVICE
            ):
                merged[field] = empty
        normalised, problems = _question_values(study, merged)
        if (
            not problems
            and normalised["key"] != question.key
            and study.questions.filter(key=normalised["key"]).exists()
        ):
            problems.append(f"the study already has a question with key {normalised['key']!r}")
        problems += [] if problems else _rank_column_clash(study, normalised, question)
        if problems:
            raise ServiceError(problems)
        for field, value in normalised.items():
            setattr(question, field, value)
        if "order" in changes:
            question.order = int(changes["order"])
        question.save()
        after = _question_state(question)
        audit.record(
            acting_user=acting_user,
            action="study.question_update",
            obj=study,
            study=study,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return question


def question_remove(*, acting_user, question: Question) -> None:
    with transaction.atomic():
        study = locked_study(question.study)
        require_draft(study)
        before = _question_state(question)
        question.delete()
        audit.record(
            acting_user=acting_user,
            action="study.question_remove",
            obj=study,
            study=study,
            before=before,
        )


QUESTION_MOVES = {"up": -1, "down": 1}


def question_move(*, acting_user, question: Question, direction: str) -> Question:
    """Move a question of a draft one place up or down (renumbering the study's questions
    1, 2, 3... in their current order). At the top or bottom already: nothing changes."""
    if direction not in QUESTION_MOVES:
        raise ServiceError(f"unknown direction {direction!r}; choose up or down")
    with transaction.atomic():
        study = locked_study(question.study)
        require_draft(study)
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
            acting_user=acting_user,
            action="study.question_move",
            obj=study,
            study=study,
            before={"order": before},
            after={"order": [q.key for q in questions], "moved": question.key},
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
        {
            "key": key,
            "kind": Question.Kind.LIKERT,
            "text": text,
            "points": 5,
            "applies_to": applies_to,
        }
        for key, text, applies_to in DEFAULT_LIKERT
    ]
    added = []
    with transaction.atomic():
        study = locked_study(study)
        require_draft(study)
        existing = set(study.questions.values_list("key", flat=True))
        for values in wanted:
            if values["key"] not in existing:
                added.append(question_add(acting_user=acting_user, study=study, **values))
    return added
