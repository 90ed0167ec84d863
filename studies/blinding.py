"""Words that unblind: the vocabulary a reader-facing text must not contain.

Readers must not learn which explainer, which kind of arm (unaided, AI, explanation,
placebo) or which truth lies behind a trial. Coordinators write several texts readers see
(the reader-facing title and description, instructions, consent, questions); this module
finds the words in them that name an explainer or an arm kind, so the coordinator is warned
before the study opens. It is a warning, not a rule: a coordinator may decide a word is fine
(e.g. "AI" itself is not flagged: readers are told when AI output is shown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from explain.compute.catalog import EXPLAINERS
from explain.explainer_requests import ALIASES

ARM_KIND_WORDS = (
    "placebo", "sham", "unaided", "randomized weights", "randomised weights",
    "weight-randomized", "weight-randomised", "randomized model", "randomised model",
    "deliberately wrong", "wrong advice", "control arm", "study arm", "arm code",
)
"""Words that name a kind of arm, or that some advice is not genuine."""

GENERIC_WORDS = frozenset({"similar", "guided", "attention"})
"""Names and aliases that are ordinary English words: not flagged on their own (the longer
forms, e.g. "attention map", still are)."""


@dataclass(frozen=True)
class Term:
    text: str  # as written in the warning
    what: str  # "an explainer" or "an arm kind"
    pattern: re.Pattern


def _pattern(term: str) -> re.Pattern:
    """Case-insensitive, on word boundaries, '-', '_' and ' ' interchangeable, plural allowed."""
    parts = [re.escape(part) for part in re.split(r"[-_\s]+", term.strip()) if part]
    body = r"[-_\s]*".join(parts)
    return re.compile(rf"(?<![\w+]){body}(?:e?s)?(?![\w+])", re.IGNORECASE)


def _explainer_terms() -> list[str]:
    terms: set[str] = set()
    for name, info in EXPLAINERS.items():
        terms.add(name)
        label = info.label
        terms.add(re.sub(r"\s*\(.*?\)", "", label).strip())
        terms.update(inner.strip() for inner in re.findall(r"\((.*?)\)", label))
    terms.update(ALIASES)
    terms.update({"attention map", "SHAP"})
    return sorted(terms - GENERIC_WORDS, key=lambda t: (-len(t), t.lower()))


def vocabulary() -> list[Term]:
    """Every flagged term, longest first (so "Grad-CAM++" is named rather than "Grad-CAM")."""
    terms = [Term(t, "an explainer", _pattern(t)) for t in _explainer_terms()]
    terms += [Term(t, "an arm kind", _pattern(t)) for t in ARM_KIND_WORDS]
    return sorted(terms, key=lambda term: -len(term.text))


_VOCABULARY = vocabulary()


def unblinding_terms(text: str) -> list[tuple[Term, str]]:
    """(term, the words as written) for each term found in ``text``, in reading order;
    a shorter term inside a longer one already found is not repeated."""
    found: list[tuple[int, Term, str]] = []
    taken: list[tuple[int, int]] = []
    for term in _VOCABULARY:
        for match in term.pattern.finditer(text or ""):
            start, end = match.span()
            if any(start < right and left < end for left, right in taken):
                continue
            taken.append((start, end))
            found.append((start, term, match.group(0)))
    found.sort(key=lambda row: row[0])
    return [(term, written) for _, term, written in found]


def text_warnings(texts: Mapping[str, str | Iterable[str]]) -> list[str]:
    """One line per (field, term): ``texts`` maps a field's name as the coordinator knows it
    ("Reader-facing description", "Question 'trust'") to its text or texts."""
    warnings: list[str] = []
    for field_name, value in texts.items():
        values = [value] if isinstance(value, str) else list(value)
        seen: set[str] = set()
        for text in values:
            for term, written in unblinding_terms(str(text)):
                if term.text.lower() in seen:
                    continue
                seen.add(term.text.lower())
                warnings.append(
                    f"{field_name} names {term.what} ('{written}'): readers would learn "
                    "what some of their trials show. Reword it unless every reader may know."
                )
    return warnings
