"""Fixing a draft's pre-registered analysis plan and its data-quality rules.

Both are part of the configuration frozen when the study opens: the snapshot keeps them, and
the plan's SHA-256 (of its canonical JSON; `selectors.snapshot.analysis_plan_sha256`), so the
report can show which results were pre-specified. An empty dict clears either one.

The plan: ``{"primary_endpoint": "auc" | "accuracy" | "sensitivity" | "specificity",
"fom": "empirical_auc" | "binormal_auc", "comparisons": [["B", "A"], ...]`` (arm codes of the
study, minuend first) ``, "alpha": 0.05, "test": "or_rrrc" | "or_frrc" | "glmm"}``.
The rules: ``{"attention_max_failures": k`` (a reader failing more than k attention checks is
excluded) ``, "fast_read_seconds": t`` (reads shorter are flagged) ``, "exclude_fast_reads":
false}`` (flagged reads are also left out of the analysis without exclusions), each optional.
"""

from __future__ import annotations

import math

from django.db import transaction

from core import audit
from core.errors import ServiceError
from studies.models import Study
from studies.services.drafts import locked_study, require_draft

PLAN_ENDPOINTS = ("auc", "accuracy", "sensitivity", "specificity")
PLAN_FOMS = ("empirical_auc", "binormal_auc")
PLAN_TESTS = ("or_rrrc", "or_frrc", "glmm")
PLAN_KEYS = ("primary_endpoint", "fom", "comparisons", "alpha", "test")
RULE_KEYS = ("attention_max_failures", "fast_read_seconds", "exclude_fast_reads")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _choice_problem(plan: dict, key: str, choices: tuple[str, ...]) -> list[str]:
    if plan.get(key) not in choices:
        return [f"{key} must be one of {', '.join(choices)}, not {plan.get(key)!r}"]
    return []


def _comparison_problems(comparisons, arms: set[str]) -> list[str]:
    if not isinstance(comparisons, list | tuple) or not comparisons:
        return ["comparisons must be a non-empty list of pairs of arm codes, e.g. [['B', 'A']]"]
    problems, seen = [], set()
    for pair in comparisons:
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not all(isinstance(code, str) for code in pair)
        ):
            problems.append(f"a comparison must be a pair of arm codes, not {pair!r}")
            continue
        unknown = [code for code in pair if code not in arms]
        if unknown:
            problems.append(
                f"comparison {pair[0]}-{pair[1]}: {', '.join(unknown)} is not an arm of the "
                f"study (arms: {', '.join(sorted(arms)) or 'none yet'})"
            )
        elif pair[0] == pair[1]:
            problems.append(f"comparison {pair[0]}-{pair[1]} compares an arm with itself")
        elif frozenset(pair) in seen:
            problems.append(f"comparison {pair[0]}-{pair[1]} is listed twice")
        seen.add(frozenset(pair))
    return problems


def plan_problems(plan, *, arms: set[str]) -> list[str]:
    """What is wrong with an analysis plan (empty: it can be fixed)."""
    if not isinstance(plan, dict):
        return ["the analysis plan must be an object"]
    if not plan:
        return []
    problems = [f"unknown plan field {key!r}" for key in sorted(set(plan) - set(PLAN_KEYS))]
    problems += [f"the plan needs {key}" for key in PLAN_KEYS if key not in plan and key != "fom"]
    problems += _choice_problem(plan, "primary_endpoint", PLAN_ENDPOINTS)
    if "fom" in plan or plan.get("primary_endpoint") == "auc":
        problems += _choice_problem(plan, "fom", PLAN_FOMS)
    problems += _choice_problem(plan, "test", PLAN_TESTS)
    alpha = plan.get("alpha")
    if not _is_number(alpha) or not 0 < alpha <= 0.5:
        problems.append(f"alpha must be a number above 0 and at most 0.5, not {alpha!r}")
    problems += _comparison_problems(plan.get("comparisons"), arms)
    return problems


def rules_problems(rules) -> list[str]:
    """What is wrong with the data-quality rules (empty: they can be fixed)."""
    if not isinstance(rules, dict):
        return ["the quality rules must be an object"]
    problems = [f"unknown rule {key!r}" for key in sorted(set(rules) - set(RULE_KEYS))]
    k = rules.get("attention_max_failures")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 0):
        problems.append(f"attention_max_failures must be a whole number, 0 or more, not {k!r}")
    t = rules.get("fast_read_seconds")
    if t is not None and (not _is_number(t) or not 0 < t < math.inf):
        problems.append(f"fast_read_seconds must be a number of seconds above 0, not {t!r}")
    exclude = rules.get("exclude_fast_reads")
    if exclude is not None and not isinstance(exclude, bool):
        problems.append("exclude_fast_reads must be true or false")
    elif exclude and t is None:
        problems.append("exclude_fast_reads needs fast_read_seconds")
    return problems


def _normalised_plan(plan: dict) -> dict:
    if not plan:
        return {}
    out = {key: plan[key] for key in PLAN_KEYS if key in plan}
    out["comparisons"] = [list(pair) for pair in plan["comparisons"]]
    out["alpha"] = float(plan["alpha"])
    return out


def study_analysis_plan_set(*, acting_user, study: Study, plan: dict) -> Study:
    """Fix (or, with {}, clear) a draft's pre-registered analysis plan."""
    with transaction.atomic():
        study = locked_study(study)
        require_draft(study)
        problems = plan_problems(plan, arms=set(study.arms.values_list("code", flat=True)))
        if problems:
            raise ServiceError(problems)
        before = study.analysis_plan
        study.analysis_plan = _normalised_plan(plan)
        study.save(update_fields=["analysis_plan"])
        audit.record(
            acting_user=acting_user,
            action="study.analysis_plan",
            obj=study,
            study=study,
            before={"analysis_plan": before},
            after={"analysis_plan": study.analysis_plan},
        )
    return study


def study_quality_rules_set(*, acting_user, study: Study, rules: dict) -> Study:
    """Fix (or, with {}, clear) a draft's attention-check exclusion rule and fast-read
    threshold."""
    problems = rules_problems(rules)
    if problems:
        raise ServiceError(problems)
    with transaction.atomic():
        study = locked_study(study)
        require_draft(study)
        before = study.quality_rules
        study.quality_rules = {key: rules[key] for key in RULE_KEYS if rules.get(key) is not None}
        study.save(update_fields=["quality_rules"])
        audit.record(
            acting_user=acting_user,
            action="study.quality_rules",
            obj=study,
            study=study,
            before={"quality_rules": before},
            after={"quality_rules": study.quality_rules},
        )
    return study
