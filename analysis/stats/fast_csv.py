"""A columnar fast path for clean long-format CSV files.

``parse_clean_long_csv`` turns the text of a ``reader,treatment,case,truth,rating`` file into the
same ``MRMCData`` as the row-by-row reader in ``analysis.stats.io``, about five times faster on a
360,000-row study: it splits the whole text into columns, codes the ids with ``np.unique`` and
checks duplicates, missing arms and truth with numpy. It does not report problems: whenever a file
is anything but clean and plain (quotes, ragged or blank rows, padded or empty ids, a bad number,
a duplicate, a missing arm, inconsistent or single-class truth, a partly filled diagnosis column,
unusual line breaks...) it returns None and the caller runs the row-by-row reader, which then
reports every problem with its usual message.
"""

from __future__ import annotations

import re

import numpy as np

from analysis.stats.data import MRMCData, label_key

# Characters that make the csv module or str.splitlines() read the text differently from a plain
# split on "," and "\n": quotes, NUL (numpy's text arrays drop trailing NULs) and every line
# break other than "\n" ("\r\n" is turned into "\n" first).
_UNUSUAL = ('"', "\x00", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
# Whitespace other than "\n" (the row reader strips it from every field; the fast path refuses
# it in the columns it reads), and the ASCII whitespace that _UNUSUAL does not already refuse.
_SPACE = re.compile(r"[^\S\n]")
_ASCII_SPACE = (" ", "\t", "\x1f")


def _has_space(text: str) -> bool:
    """Whether ``text`` holds whitespace other than line breaks (the characters str.strip()
    strips; line breaks other than "\n" must have been refused already)."""
    if text.isascii():
        return any(ch in text for ch in _ASCII_SPACE)
    return _SPACE.search(text) is not None


def _codes(column: list[str]) -> tuple[tuple[str, ...], np.ndarray] | None:
    """Labels sorted by ``label_key`` and each row's index into them (None: an empty id)."""
    labels = sorted(dict.fromkeys(column), key=label_key)
    index = dict(zip(labels, range(len(labels)), strict=True))
    if "" in index:
        return None
    codes = np.fromiter(map(index.__getitem__, column), dtype=np.intp, count=len(column))
    return tuple(labels), codes


def _binary(values: np.ndarray) -> np.ndarray | None:
    """0/1 values as int8 (None: any other value)."""
    if not ((values == 0.0) | (values == 1.0)).all():
        return None
    return values.astype(np.int8)


def _columns(text: str, required: list[str], optional: str) -> dict[str, list[str]] | None:
    """The required columns and, if present, the optional one of a plain CSV text, by
    lower-cased header name (None: the text is not plain, or a required column is missing)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if any(ch in text for ch in _UNUSUAL):
        return None
    head, _, body = text.partition("\n")
    header = [name.strip().lower() for name in head.split(",")]
    body = body.rstrip("\n")
    if not body or any(c not in header for c in required) or len(set(header)) != len(header):
        return None
    lines = body.split("\n")
    n = len(header)
    if set(map(str.count, lines, [","] * len(lines))) != {n - 1}:  # ragged or blank rows
        return None
    flat = body.replace("\n", ",").split(",")
    names = required + [optional] * (optional in header and optional not in required)
    columns = {name: flat[header.index(name) :: n] for name in names}
    if _has_space(text) and any(_has_space("\n".join(c)) for c in columns.values()):
        return None  # padded fields
    return columns


def parse_clean_long_csv(
    text: str, source: str, required: tuple[str, ...], case_column: str, diagnosis_column: str
) -> MRMCData | None:
    """The study in a clean long CSV text (header included), or None if it is not clean.

    ``required`` names the required columns, with ``case_column`` in place of ``case``.
    """
    columns = _columns(text, list(dict.fromkeys(required)), diagnosis_column)
    if columns is None:
        return None
    coded = [_codes(columns[name]) for name in ("treatment", "reader", case_column)]
    if any(c is None for c in coded):
        return None
    (treatments, t), (readers, r), (cases, c) = coded
    try:
        ratings = np.array(columns["rating"], dtype=float)  # parsed as float() parses
        truth = _binary(np.array(columns["truth"], dtype=float))
        diagnosis = None
        if diagnosis_column in columns:
            diagnosis = _binary(np.array(columns[diagnosis_column], dtype=float))
    except ValueError:
        return None
    if truth is None or not np.isfinite(ratings).all():
        return None
    if diagnosis is None and diagnosis_column in columns:
        return None
    shape = (len(treatments), len(readers), len(cases))
    cell = np.ravel_multi_index((t, r, c), shape)
    if np.bincount(cell, minlength=shape[0] * shape[1] * shape[2]).max() > 1:  # duplicates
        return None
    if np.unique(t * shape[1] + r).size != shape[0] * shape[1]:  # a reader missing an arm
        return None
    case_truth = np.empty(shape[2], dtype=np.int8)
    case_truth[c] = truth
    if (case_truth[c] != truth).any() or case_truth.min() == case_truth.max():
        return None  # inconsistent truth or a single class
    grid = np.full(shape, np.nan)
    grid.ravel()[cell] = ratings
    diag = None
    if diagnosis is not None:
        diag = np.full(shape, np.nan)
        diag.ravel()[cell] = diagnosis
    return MRMCData(treatments, readers, cases, case_truth, grid, diag, source)
