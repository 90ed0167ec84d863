"""The configuration frozen when a study opens."""

from __future__ import annotations

import hashlib
import json

from library.models import Case
from studies import randomization
from studies.models import (
    Study,
)
from studies.selectors.configuration import study_case_ids
from studies.selectors.readiness import study_empty_explanations


def _clinical_histories(study: Study) -> dict[str, str]:
    """Case id -> the clinical history readers see, frozen with the study (only when an arm
    shows it): a later edit of a case's text does not change what this study's readers see."""
    if not study.arms.filter(shows_clinical_history=True).exists():
        return {}
    return {
        str(pk): text
        for pk, text in Case.objects.filter(pk__in=study.study_cases.values("case_id"))
        .exclude(clinical_history="")
        .values_list("pk", "clinical_history")
    }


def canonical_json(value) -> str:
    """The canonical JSON of a value: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def analysis_plan_sha256(plan: dict) -> str | None:
    """SHA-256 (hex) of the plan's canonical JSON; None when there is no plan."""
    if not plan:
        return None
    return hashlib.sha256(canonical_json(plan).encode("utf-8")).hexdigest()


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
        "model": {
            "name": study.model.name,
            "uid": str(study.model.uid),
            "sha256": study.model.file_sha256,
        }
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
            {
                "code": a.code,
                "kind": a.kind,
                "explainer": a.explainer,
                "params": a.params,
                "seed": a.seed,
                "param_hash": a.param_hash,
                "shows_clinical_history": a.shows_clinical_history,
            }
            for a in study.arms.order_by("code")
        ],
        "questions": [
            {
                "key": q.key,
                "kind": q.kind,
                "text": q.text,
                "options": q.options,
                "scale": q.scale,
                "points": q.points,
                "anchors": q.anchors,
                "applies_to": q.applies_to,
                "stage": q.stage,
                "required": q.required,
            }
            for q in study.questions.all()
        ],
        "cases": cases,
        "questionnaires": study.questionnaires or [],
        "clinical_histories": _clinical_histories(study),
        "analysis_plan": study.analysis_plan or {},
        "analysis_plan_sha256": analysis_plan_sha256(study.analysis_plan),
        "quality_rules": study.quality_rules or {},
        "empty_explanations": [
            {"arm": row["arm"], "case_id": row["case_id"]}
            for row in study_empty_explanations(study=study)
        ],
    }
