"""Load test: many readers reading a real study at once, as their browsers would.

Each reader is a thread with its own HTTP session that does what the browser does (read
studies/reader_views.py, studies/reader_api.py and static/studies/trial.js):

* log in through the login form (GET the form for the CSRF cookie and token, POST it with the
  token, an Origin and a Referer) and follow the redirects;
* consent on the study page's form, then open its trials in order through /read/<study>/next/;
* fetch the trial page and read the embedded payload and CSRF token, then the image the viewer
  loads (the full-precision pixels of a grey-scale image, the PNG of a colour one), the heatmap
  overlay once the payload names one, and similar-case thumbnails if any;
* answer each stage with the page's JSON API (POST answer with a client key and the token in
  X-CSRFToken; two-stage trials: first answer, POST reveal, fetch the overlay, final answer).

On purpose, some submits are sent twice with the same client key (at the same moment from a
second connection, like a double click; or again after the first succeeded, like a retried
request), some are sent with a read timeout so short that the client gives up and then retries
with the same key (the server still handles the first), and some trials are resumed: the page
is fetched again mid-trial, as a reload does, and must ask for the same step. Every reader
keeps what it meant to store, (trial, stage) -> (client key, answers).

Afterwards `manage.py load_study_report STUDY` (run here, with this environment, so it reaches
the server's database) tells what is stored; every intended response must be stored exactly
once, with the client key and answers sent, with one `trial.answer` audit row, and nothing else
may be stored. The exit status is 1 on any HTTP 5xx, any unexpected answer, or any response
missing, duplicated or different.

Secure cookies over plain http: a production server (DJANGO_ENV=production) sits behind a
TLS-terminating reverse proxy, marks its cookies Secure and trusts X-Forwarded-Proto. When the
server's CSRF cookie comes back Secure (or it redirects to https), this client plays the
proxy's part: it sends `X-Forwarded-Proto: https`, https Origins and Referers, and sends the
Secure cookies over the plain-http connection to the address it was given (it writes the
Cookie header itself and follows redirects itself: requests builds that header from a copy of
its cookie jar under the default policy, which keeps Secure cookies for https, so a custom
cookie policy is not enough). `--https-proxy yes|no` forces either.

The study: `--setup` runs `manage.py load_study` (a new open two-stage study, readers with the
password given; add `--allow-production` under production settings), or `--study-json FILE`
names the JSON line that command printed.

Configurations (the short one is CI's, tests/stack/test_load.py):

    short: python bench/load_readers.py --url URL --setup --password PW
           (50 readers, 4 cases each: one unaided, three with the AI, two of them two-stage
           with a heatmap)
    long:  python bench/load_readers.py --url URL --setup --password PW --readers 200 \\
           --cases-per-reader 40 --max-seconds 3600

Traffic goes only to the URL given (use a server on this machine). Every loop is bounded: each
reader reads at most its schedule (or --trials), every request has a timeout, and the run stops
at --max-seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
# Longer than gunicorn's worker timeout (120 s): a request the server gives up on shows as such.
REQUEST_TIMEOUT = 130.0
# A read timeout the server cannot meet: the client gives up although the request was sent.
GIVE_UP_TIMEOUT = 0.001
KINDS = (
    "login", "consent", "next", "trial page", "image", "heatmap", "similar", "submit",
    "submit duplicate", "submit retry", "reveal", "resume",
)
PAYLOAD = re.compile(r'<script id="trial-payload" type="application/json">(.*?)</script>', re.S)
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CONSENT_VERSION = re.compile(r'name="consent_version" value="(\d+)"')
DATA_ATTR = re.compile(r'data-(csrf-token|answer-url|reveal-url)="([^"]*)"')
TRIAL_PATH = re.compile(r"/read/trials/([0-9a-f-]{36})/$")


# Recording ------------------------------------------------------------------------------------


@dataclass
class Record:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    # (trial uid, stage) -> (client key, answers)
    intended: dict[tuple[str, str], tuple[str, dict]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timing(self, kind: str, seconds: float, status: int, what: str) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[status] += 1
            if status >= 500:
                self.server_errors.append(f"{kind} {what}: HTTP {status}")

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def intend(self, trial: str, stage: str, key: str, answers: dict) -> None:
        with self.lock:
            if (trial, stage) in self.intended:
                self.errors.append(f"trial {trial} {stage}: the client answered this stage twice")
            self.intended[(trial, stage)] = (key, answers)


class ReaderFailed(Exception):
    """What this reader saw is wrong; it stops (the run fails)."""


# One reader -----------------------------------------------------------------------------------


class Reader:
    def __init__(self, *, base_url: str, username: str, password: str, study: int, proxy: bool,
                 record: Record, rng: random.Random, options: argparse.Namespace, deadline: float):
        self.base = base_url.rstrip("/")
        self.username, self.password, self.study = username, password, study
        self.proxy, self.record, self.rng, self.options, self.deadline = proxy, record, rng, options, deadline
        netloc = urlsplit(self.base).netloc
        self.origin = ("https://" if proxy else "http://") + netloc
        self.session = self._new_session()

    # HTTP ----------------------------------------------------------------------------------

    def _new_session(self, cookies=None) -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = "xrs-load-readers/1"
        if self.proxy:
            session.headers["X-Forwarded-Proto"] = "https"
        if cookies is not None:
            for cookie in cookies:
                session.cookies.set_cookie(cookie)
        return session

    def _url(self, path: str) -> str:
        return urljoin(self.base + "/", path.lstrip("/"))

    def _page_url(self, path: str) -> str:
        """The address the browser shows (what it sends as Referer)."""
        return self.origin + path

    def request(self, kind: str, method: str, path: str, *, session=None, referer: str | None = None,
                timeout=REQUEST_TIMEOUT, **kwargs) -> requests.Response:
        if time.monotonic() > self.deadline:
            raise ReaderFailed("the run's time limit (--max-seconds) was reached")
        headers = dict(kwargs.pop("headers", {}) or {})
        if method != "GET":
            headers.setdefault("Origin", self.origin)
        if referer:
            headers.setdefault("Referer", self._page_url(referer))
        session = session or self.session
        follow = kwargs.pop("allow_redirects", True)
        started = time.perf_counter()
        response = session.request(
            method, self._url(path), headers={**headers, **self._cookie(session)}, timeout=timeout,
            allow_redirects=False, **kwargs,
        )
        for _hop in range(10):  # follow redirects as the browser does: GET, with the new cookies
            if not (follow and response.is_redirect):
                break
            target = urlsplit(response.headers["Location"])
            response = session.request(
                "GET", self._url(target.path + (f"?{target.query}" if target.query else "")),
                headers={**self._cookie(session), **({"Referer": headers["Referer"]} if "Referer" in headers else {})},
                timeout=timeout, allow_redirects=False,
            )
        self.record.timing(kind, time.perf_counter() - started, response.status_code, f"{method} {path}")
        return response

    @staticmethod
    def _cookie(session: requests.Session) -> dict:
        """The Cookie header, Secure cookies included: requests keeps them for https (it builds
        the header from a copy of the jar with the default policy, so a policy cannot change
        that), but TLS ends at the proxy this client stands in for. One host only."""
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in session.cookies)
        return {"Cookie": cookies} if cookies else {}

    def expect(self, response: requests.Response, status: int | tuple, what: str) -> requests.Response:
        wanted = status if isinstance(status, tuple) else (status,)
        if response.status_code not in wanted:
            raise ReaderFailed(f"{what}: HTTP {response.status_code} (wanted {wanted}) {response.text[:300]!r}")
        return response

    # The reading -----------------------------------------------------------------------------

    def run(self, start: threading.Barrier) -> None:
        try:
            start.wait(timeout=120)
            self.log_in()
            self.consent()
            limit = self.options.trials or 10**6
            for _ in range(limit):
                trial_path = self.open_next()
                if trial_path is None:
                    break
                self.read_trial(trial_path)
                self.record.count("trials read")
        except ReaderFailed as exc:
            self.record.error(f"{self.username}: {exc}")
        except requests.RequestException as exc:
            self.record.error(f"{self.username}: {type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug in this script must still fail the run, with a reason
            self.record.error(f"{self.username}: unexpected {type(exc).__name__}: {exc}")

    def log_in(self) -> None:
        form = self.expect(self.request("login", "GET", "/accounts/login/"), 200, "login form")
        token = CSRF_INPUT.search(form.text)
        if not token:
            raise ReaderFailed("login form: no CSRF token")
        done = self.request(
            "login", "POST", "/accounts/login/", referer="/accounts/login/",
            data={"username": self.username, "password": self.password, "next": "",
                  "csrfmiddlewaretoken": token.group(1)},
        )
        self.expect(done, 200, "login")
        if "sessionid" not in self.session.cookies or urlsplit(done.url).path == "/accounts/login/":
            raise ReaderFailed(f"login refused (ended on {urlsplit(done.url).path})")

    def consent(self) -> None:
        path = f"/read/{self.study}/"
        page = self.expect(self.request("consent", "GET", path), 200, "study page")
        version = CONSENT_VERSION.search(page.text)
        if version is None:  # already consented
            return
        token = CSRF_INPUT.search(page.text)
        done = self.request(
            "consent", "POST", path, referer=path,
            data={"consent_version": version.group(1), "csrfmiddlewaretoken": token.group(1) if token else ""},
        )
        self.expect(done, 200, "consent")
        if CONSENT_VERSION.search(done.text):
            raise ReaderFailed("consent was not recorded")

    def open_next(self) -> str | None:
        response = self.request("next", "GET", f"/read/{self.study}/next/", allow_redirects=False)
        self.expect(response, 302, "next trial")
        location = urlsplit(response.headers["Location"]).path
        if TRIAL_PATH.search(location):
            return location
        if location.rstrip("/") == f"/read/{self.study}":
            return None  # finished (or the next session is locked)
        raise ReaderFailed(f"next trial: redirected to {location}")

    def load_page(self, kind: str, path: str) -> dict:
        page = self.expect(self.request(kind, "GET", path, referer=f"/read/{self.study}/"), 200, f"{kind} {path}")
        match = PAYLOAD.search(page.text)
        attrs = dict(DATA_ATTR.findall(page.text))
        if not match or "csrf-token" not in attrs:
            raise ReaderFailed(f"{kind} {path}: no trial payload or CSRF token on the page")
        return {"payload": json.loads(match.group(1)), "csrf": attrs["csrf-token"],
                "answer": attrs["answer-url"], "reveal": attrs["reveal-url"], "path": path}

    def fetch(self, kind: str, url: str, page: dict) -> None:
        response = self.request(kind, "GET", url, referer=page["path"])
        self.expect(response, 200, f"{kind} {url}")
        if not response.content:
            raise ReaderFailed(f"{kind} {url}: empty body")

    def fetch_images(self, page: dict, shown: set) -> None:
        payload = page["payload"]
        image = payload["image"]
        # What the viewer loads: full-precision pixels for grey-scale images, the PNG otherwise.
        url = image["display_url"] if image["is_color"] else image["pixels_url"]
        if url not in shown:
            self.fetch("image", url, page)
            shown.add(url)
        if payload.get("overlay_url") and payload["overlay_url"] not in shown:
            self.fetch("heatmap", payload["overlay_url"], page)
            shown.add(payload["overlay_url"])
        for case in payload.get("similar_cases") or []:
            if case["url"] not in shown:
                self.fetch("similar", case["url"], page)
                shown.add(case["url"])

    def read_trial(self, path: str) -> None:
        page = self.load_page("trial page", path)
        shown: set[str] = set()
        self.fetch_images(page, shown)
        trial = page["payload"]["trial"]
        for _step in range(6):  # first, reveal, final, and resumes between them
            stage = page["payload"]["stage"]
            if stage is None:
                return
            if self.rng.random() < self.options.resume_rate:
                resumed = self.load_page("resume", path)
                self.record.count("resumes")
                if resumed["payload"]["stage"] != stage or resumed["payload"]["trial"] != trial:
                    raise ReaderFailed(
                        f"resume of {trial}: the page asks for {resumed['payload']['stage']!r}, not {stage!r}"
                    )
                page = resumed
            if stage == "reveal":
                response = self.request(
                    "reveal", "POST", page["reveal"], referer=path, json={},
                    headers={"X-CSRFToken": page["csrf"], "Accept": "application/json"},
                )
                page = {**page, "payload": self.expect(response, 200, f"reveal {trial}").json()}
                if page["payload"]["stage"] != "final":
                    raise ReaderFailed(f"reveal {trial}: next step {page['payload']['stage']!r}, not 'final'")
                self.fetch_images(page, shown)
                continue
            page = {**page, "payload": self.submit(page, stage)}
            self.fetch_images(page, shown)
        raise ReaderFailed(f"trial {trial} did not finish in 6 steps")

    def answers_for(self, questions: list[dict]) -> dict:
        answers = {}
        for q in questions:
            if q["kind"] == "diagnosis":
                answers[q["key"]] = self.rng.choice(q["options"])
            elif q["kind"] == "confidence":
                low, high = {"scale5": (1, 5), "scale7": (1, 7)}.get(q["scale"], (0, 100))
                answers[q["key"]] = self.rng.randint(low, high)
            elif q["kind"] == "likert":
                answers[q["key"]] = self.rng.randint(1, q["points"] or 5)
            else:
                answers[q["key"]] = f"load test note {self.rng.randint(0, 999)}"
        return answers

    def submit(self, page: dict, stage: str) -> dict:
        payload = page["payload"]
        trial = payload["trial"]
        answers = self.answers_for(payload["questions"])
        key = str(uuid.uuid4())
        body = {"stage": stage, "answers": answers, "client_key": key,
                "interactions": {"viewer_ms": self.rng.randint(500, 30000), "window_changes": self.rng.randint(0, 4)}}
        headers = {"X-CSRFToken": page["csrf"], "Accept": "application/json"}
        expected_next = "reveal" if stage == "first" else None
        self.record.intend(trial, stage, key, answers)

        def post(kind, session=None, timeout=REQUEST_TIMEOUT):
            return self.request(kind, "POST", page["answer"], referer=page["path"], json=body,
                                headers=headers, session=session, timeout=timeout)

        def accepted(response, what) -> dict:
            self.expect(response, 200, f"{what} {trial} {stage}")
            result = response.json().get("payload") or {}
            if result.get("trial") != trial or result.get("stage") != expected_next:
                raise ReaderFailed(f"{what} {trial} {stage}: next step {result.get('stage')!r}, not {expected_next!r}")
            return result

        fault = self.rng.random()
        o = self.options
        if fault < o.concurrent_duplicate_rate:
            # a double click: the same submit from a second connection at the same moment
            twin = self._new_session(cookies=list(self.session.cookies))
            results: dict[str, requests.Response | Exception] = {}

            def send(name, session, kind):
                try:
                    results[name] = post(kind, session=session)
                except Exception as exc:
                    results[name] = exc

            other = threading.Thread(target=send, args=("twin", twin, "submit duplicate"))
            other.start()
            send("own", None, "submit")
            other.join(REQUEST_TIMEOUT + 5)
            self.record.count("duplicates sent (concurrent)")
            for name in ("own", "twin"):
                if isinstance(results.get(name), Exception) or name not in results:
                    raise ReaderFailed(f"concurrent duplicate {trial} {stage} ({name}): {results.get(name)!r}")
            accepted(results["twin"], "concurrent duplicate")
            return accepted(results["own"], "submit")
        if fault < o.concurrent_duplicate_rate + o.sequential_duplicate_rate:
            result = accepted(post("submit"), "submit")
            accepted(post("submit duplicate"), "sequential duplicate")
            self.record.count("duplicates sent (sequential)")
            return result
        if fault < o.concurrent_duplicate_rate + o.sequential_duplicate_rate + o.timeout_rate:
            # the client gives up waiting (the server still stores it), then retries with the key
            try:
                post("submit", timeout=(REQUEST_TIMEOUT, GIVE_UP_TIMEOUT))
                self.record.count("timeouts not reached (answered within 1 ms)")
            except requests.Timeout:
                self.record.count("client timeouts then retried")
            return accepted(post("submit retry"), "retry after a timeout")
        return accepted(post("submit"), "submit")


# The run --------------------------------------------------------------------------------------


def manage(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, capture_output=True, text=True,
        timeout=900, check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def detect_proxy(base_url: str) -> bool:
    """True when the server expects TLS (production behind a proxy): its CSRF cookie is
    Secure, or it redirects the login page to https."""
    response = requests.get(base_url.rstrip("/") + "/accounts/login/", allow_redirects=False, timeout=REQUEST_TIMEOUT)
    if response.is_redirect and response.headers.get("Location", "").startswith("https://"):
        return True
    return any(cookie.secure for cookie in response.cookies)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q / 100 * len(ordered))) - 1)]


def latency_table(record: Record) -> list[dict]:
    rows = []
    for kind in KINDS:
        values = record.latencies.get(kind)
        if not values:
            continue
        rows.append({
            "kind": kind, "count": len(values),
            "p50_ms": 1000 * percentile(values, 50), "p95_ms": 1000 * percentile(values, 95),
            "p99_ms": 1000 * percentile(values, 99), "max_ms": 1000 * max(values),
        })
    return rows


def check_stored(report: dict, record: Record) -> tuple[dict, list[str]]:
    """Compare what the server stored with what the readers meant to store."""
    problems, stored = [], {}
    for uid, trial in report["trials"].items():
        for response in trial["responses"]:
            stored.setdefault((uid, response["stage"]), []).append(response)
    missing = duplicated = different = unexpected = 0
    for (uid, stage), (key, answers) in sorted(record.intended.items()):
        rows = stored.get((uid, stage), [])
        if not rows:
            missing += 1
            problems.append(f"trial {uid} {stage}: no response stored")
            continue
        if len(rows) > 1 or rows[0]["audit_rows"] != 1:
            duplicated += 1
            problems.append(f"trial {uid} {stage}: {len(rows)} responses, {rows[0]['audit_rows']} audit rows")
        if rows[0]["client_key"] != key or rows[0]["answers"] != answers:
            different += 1
            problems.append(f"trial {uid} {stage}: stored {rows[0]['client_key']} {rows[0]['answers']}, sent {key} {answers}")
        if stage == "final" and report["trials"][uid]["state"] != "done":
            problems.append(f"trial {uid}: state {report['trials'][uid]['state']} after its final answer")
    for pair in sorted(set(stored) - set(record.intended)):
        unexpected += 1
        problems.append(f"trial {pair[0]} {pair[1]}: stored although no reader answered it")
    for orphan in report.get("audit_rows_without_response", []):
        duplicated += 1
        problems.append(f"trial {orphan['trial']} {orphan['stage']}: audit rows without a response")
    summary = {"intended": len(record.intended), "stored_once": len(record.intended) - missing - duplicated,
               "missing": missing, "duplicated": duplicated, "different": different, "unexpected": unexpected}
    return summary, problems


def print_report(summary: dict, out=sys.stdout) -> None:
    print(f"\nLoad test: {summary['readers']} readers, {summary['trials_read']} trials read in "
          f"{summary['wall_s']:.1f} s ({summary['requests']} requests, {summary['requests_per_s']:.1f}/s)", file=out)
    print(f"{'kind':<18}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}", file=out)
    for row in summary["latency"]:
        print(f"{row['kind']:<18}{row['count']:>7}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}"
              f"{row['p99_ms']:>9.0f}{row['max_ms']:>9.0f}", file=out)
    for name, value in sorted(summary["counts"].items()):
        print(f"{name}: {value}", file=out)
    print(f"HTTP statuses: {dict(sorted(summary['statuses'].items()))}; 5xx: {summary['http_5xx']}", file=out)
    stored = summary.get("stored")
    if stored:
        print("stored exactly once: {stored_once} of {intended} intended responses (missing {missing}, "
              "duplicated {duplicated}, different {different}, unexpected {unexpected})".format(**stored), file=out)
    for line in summary["errors"][:30]:
        print("ERROR " + line, file=out)
    if len(summary["errors"]) > 30:
        print(f"... and {len(summary['errors']) - 30} more errors", file=out)
    print("RESULT: " + ("ok" if summary["ok"] else "FAILED"), file=out)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the running server, e.g. http://127.0.0.1:8000")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--setup", action="store_true", help="create the study with manage.py load_study first")
    source.add_argument("--study-json", type=Path, help="the JSON line manage.py load_study printed")
    parser.add_argument("--password", required=True, help="the readers' password")
    parser.add_argument("--readers", type=int, default=50, help="with --setup: readers to create (default 50)")
    parser.add_argument("--cases-per-reader", type=int, default=4, help="with --setup (default 4)")
    parser.add_argument("--allow-production", action="store_true", help="with --setup, passed to load_study")
    parser.add_argument("--trials", type=int, default=0, help="trials each reader reads (default: all)")
    parser.add_argument("--concurrent-duplicate-rate", type=float, default=0.15)
    parser.add_argument("--sequential-duplicate-rate", type=float, default=0.15)
    parser.add_argument("--timeout-rate", type=float, default=0.1, help="submits the client gives up on, then retries")
    parser.add_argument("--resume-rate", type=float, default=0.2, help="chance of a reload before each step")
    parser.add_argument("--https-proxy", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop the run after this long")
    parser.add_argument("--no-check", action="store_true", help="skip the stored-exactly-once check")
    parser.add_argument("--json", type=Path, help="also write the summary here as JSON")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    options = parse_args(argv)
    if options.setup:
        args = ["load_study", "--readers", str(options.readers), "--cases-per-reader", str(options.cases_per_reader),
                "--password", options.password]
        study = json.loads(manage(*args, *(["--allow-production"] if options.allow_production else [])))
    else:
        study = json.loads(options.study_json.read_text().strip().splitlines()[-1])
    proxy = detect_proxy(options.url) if options.https_proxy == "auto" else options.https_proxy == "yes"
    record = Record()
    deadline = time.monotonic() + options.max_seconds
    readers = [
        Reader(base_url=options.url, username=name, password=options.password, study=study["study"], proxy=proxy,
               record=record, rng=random.Random(f"{options.seed}:{name}"), options=options, deadline=deadline)
        for name in study["readers"]
    ]
    start = threading.Barrier(len(readers))
    threads = [threading.Thread(target=reader.run, args=(start,), name=reader.username) for reader in readers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(1.0, deadline - time.monotonic() + REQUEST_TIMEOUT + 10))
    wall = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        record.error("some readers were still running at the end of the time limit")
    summary = {
        "study": study["study"], "readers": len(readers), "https_proxy": proxy,
        "trials_read": record.counts.get("trials read", 0), "wall_s": wall,
        "requests": sum(record.statuses.values()),
        "requests_per_s": sum(record.statuses.values()) / wall if wall else 0.0,
        "latency": latency_table(record),
        "counts": dict(record.counts),
        "statuses": {str(k): v for k, v in record.statuses.items()},
        "http_5xx": sum(v for k, v in record.statuses.items() if k >= 500),
        "errors": record.server_errors + record.errors,
    }
    if not options.no_check:
        report = json.loads(manage("load_study_report", str(study["study"])))
        summary["stored"], problems = check_stored(report, record)
        summary["errors"] += problems
    summary["ok"] = not summary["errors"] and summary["http_5xx"] == 0 and summary["trials_read"] > 0
    print_report(summary)
    if options.json:
        options.json.write_text(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
