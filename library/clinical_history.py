"""A case's clinical history: the short text readers may be shown beside the image
("58-year-old smoker, cough for 3 weeks") when their study arm shows it.

Pure text rules shared by the labels CSV and the coordinator's edit: control characters are
dropped (line breaks and tabs kept, CR LF made LF), the ends are stripped, and the result has at
most MAX_CLINICAL_HISTORY_CHARS characters."""

from __future__ import annotations

import unicodedata

MAX_CLINICAL_HISTORY_CHARS = 2000
_KEPT_CONTROLS = {"\n", "\t"}
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}  # controls, format (bidi), surrogates, ...


def clinical_history_clean(text: str) -> str:
    """`text` without control characters and surrounding blanks (empty: no history)."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    kept = (
        ch
        for ch in text
        if ch in _KEPT_CONTROLS or unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    return "".join(kept).strip()


def clinical_history_problem(text: str) -> str | None:
    """Why a cleaned history cannot be stored, or None."""
    if len(text) > MAX_CLINICAL_HISTORY_CHARS:
        return (
            f"the clinical history has {len(text):,} characters, "
            f"the limit is {MAX_CLINICAL_HISTORY_CHARS:,}"
        )
    return None
