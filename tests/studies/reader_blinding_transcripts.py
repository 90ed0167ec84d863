"""What may differ between two trials' responses, normalized away for the differential checks
of test_reader_blinding_crawl.py."""

from __future__ import annotations

import json
import re
from collections import defaultdict

from tests.studies.reader_blinding_crawler import Crawl, Visit
from tests.studies.reader_blinding_world import CSRF, NONCE, PAYLOAD_SCRIPT, UUID

# Differential checks: what may not make a difference --------------------------------------


def _normalize_json(value, *, case_fields: bool):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if case_fields and key in {
                "rows",
                "columns",
                "value_min",
                "value_max",
                "presets",
                "modality",
            }:
                out[key] = "<image>"
            elif case_fields and key == "ai" and isinstance(item, dict):
                out[key] = dict.fromkeys(item, "<ai>")
            elif case_fields and key == "similar_cases":
                out[key] = "<similar cases>"  # how many there are varies with the case
            elif key in {"position", "session", "trials_in_session"}:
                out[key] = "<position>"
            else:
                out[key] = _normalize_json(item, case_fields=case_fields)
        return out
    if isinstance(value, list):
        return [_normalize_json(item, case_fields=case_fields) for item in value]
    if isinstance(value, str):
        return _normalize_text(value)
    return value


def _normalize_text(text: str) -> str:
    text = UUID.sub("<uuid>", text)
    text = CSRF.sub(r"\1<csrf>", text)
    text = NONCE.sub("nonce<nonce>", text)
    return re.sub(r"\d+", "#", text)


def normalized(visit: Visit, *, case_fields: bool) -> tuple:
    headers = {
        name: ("<varies>" if name in {"Content-Length", "ETag", "Date"} else _normalize_text(value))
        for name, value in visit.headers.items()
    }
    if "/files/" in visit.path and visit.status == 200:
        body = "<file>"
    elif "json" in visit.content_type:
        data = _normalize_json(json.loads(visit.text()), case_fields=case_fields)
        body = json.dumps(data, sort_keys=True)
    elif "html" in visit.content_type:
        text = visit.text()
        script = PAYLOAD_SCRIPT.search(text)
        if script:
            data = _normalize_json(json.loads(script.group(2)), case_fields=case_fields)
            text = (
                text[: script.start(2)]
                + "<payload>"
                + text[script.end(2) :]
                + json.dumps(data, sort_keys=True)
            )
        body = _normalize_text(text)
        if case_fields:
            body = re.sub(r"Case # of #", "Case", body)
    else:
        body = _normalize_text(visit.text())
    return (
        visit.method,
        _normalize_text(visit.path),
        visit.status,
        tuple(sorted(headers.items())),
        tuple(sorted(visit.cookies)),
        body,
    )


def _transcripts(crawl: Crawl, *, case_fields: bool) -> dict[str, list]:
    by_trial = defaultdict(list)
    for visit in crawl.visits:
        if visit.trial:
            by_trial[visit.trial].append((visit.step, normalized(visit, case_fields=case_fields)))
    return by_trial
