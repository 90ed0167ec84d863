"""Start the production stack as separate processes, for smoke and load tests.

    from tests.stack.launcher import Stack, stack_services

    ok, why = stack_services()            # PostgreSQL and Redis reachable?
    require_service("PostgreSQL and Redis", ok, why)
    with Stack(storage="s3", workers=1) as stack:
        stack.url                          # "http://127.0.0.1:<port>" (gunicorn)
        stack.manage("createsuperuser", "--noinput", env={...})  # CompletedProcess
        stack.create_user("coord", "pw", coordinator=True)
        client = stack.client()            # a requests.Session for stack.url
        client.login("coord", "pw")
        client.get("/api/v1/collections/").json()

What runs, each in its own process (group), with production settings
(DJANGO_ENV=production, a throwaway secret key, DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost,
DJANGO_SECURE_SSL_REDIRECT=false):

- a fresh PostgreSQL database `xrs_stack_<random>` on the server that DATABASE_URL names,
  created at start and dropped at the end (migrated with `manage.py migrate` first);
- Redis database `redis_db` (default 5, or XRS_STACK_REDIS_DB) on the server that
  CELERY_BROKER_URL names: claimed with a key (a second stack on the same database fails
  to start instead of stealing its tasks), flushed at start and at the end;
- storage="s3": moto's standalone S3 server (`python -m moto.server`, an implementation of the
  S3 HTTP API, not a mock of our code) on a free port with a fresh bucket, used through
  django-storages' S3Storage (XRS_STORAGE=s3);
  storage="filesystem": a media folder under the stack's temporary directory;
- `collectstatic` (whitenoise serves static files from gunicorn; slow because of compression, so
  its output is cached under the system's temp directory, keyed by the static sources);
- gunicorn with config/gunicorn.conf.py (`web_workers` processes) on a free port;
- `workers` Celery worker processes (`celery -A config worker -Q default,gpu,gpu_low --pool solo`);
  more can be started and stopped with `start_worker()` / `stop_worker()`. The solo pool runs
  the task in the worker process itself, so SIGKILL on a worker is a crash mid-task.

The stack is ready once /health/ answers 200 (database, broker and storage all ok) and every
worker logged "ready". Logs go to files under `stack.log_dir`; when start-up or the `with`
body fails, the last lines of every log are printed. Everything is torn down on exit, whatever
happened; the temporary directory is removed unless XRS_STACK_KEEP=1.

The HTTP client behaves like a browser behind the TLS-terminating reverse proxy: it sends
`X-Forwarded-Proto: https` (so the production settings see a secure request), keeps the
`Secure` session and CSRF cookies although it talks plain http to gunicorn, and sends the
CSRF token and a same-origin Referer with every unsafe request.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_QUEUES = ("default", "gpu", "gpu_low")
DEFAULT_REDIS_DB = 5
_CLAIM_KEY = "xrs-stack:claim"

# Variables of the calling environment that must not leak into the stack's processes.
_OWN_PREFIXES = ("DJANGO_", "XRS_", "CELERY_", "GUNICORN_", "AWS_")
_OWN_NAMES = {"DATABASE_URL"}


class StackError(RuntimeError):
    """The stack could not start (the message says which part and why)."""


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def _redis_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


def stack_services() -> tuple[bool, str]:
    """Whether the services the stack needs are configured and reachable, and how to set them."""
    how = (
        "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/xai_reader_study and "
        "CELERY_BROKER_URL=redis://127.0.0.1:6379/14"
    )
    pg, rd = _postgres_url(), _redis_url()
    if not pg or not rd:
        return False, how
    try:
        import psycopg

        psycopg.connect(_with_database(pg, "postgres"), connect_timeout=3).close()
    except Exception as exc:
        return False, f"{how} (PostgreSQL: {type(exc).__name__})"
    try:
        import redis

        redis.Redis.from_url(rd, socket_connect_timeout=3).ping()
    except Exception as exc:
        return False, f"{how} (Redis: {type(exc).__name__})"
    return True, how


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _stale_claim(value: bytes | None) -> bool:
    """Whether a Redis claim was left by a stack whose process (on this host) is gone."""
    if value is None:
        return True
    try:
        _token, pid, host = value.decode().split(":", 2)
        if host != socket.gethostname():
            return False
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


def _static_key() -> str:
    import hashlib
    from importlib import metadata

    digest = hashlib.sha256()
    sources = {REPO_ROOT / "static", *REPO_ROOT.glob("*/static")}
    for path in sorted(f for source in sources for f in source.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(REPO_ROOT)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    for package in ("django", "djangorestframework", "drf-spectacular",
                    "drf-spectacular-sidecar", "whitenoise", "django-axes"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            digest.update(f"{package}=={metadata.version(package)}\n".encode())
    return digest.hexdigest()[:16]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _make_client(base_url: str):
    import requests

    class StackClient(requests.Session):
        """A requests.Session bound to the stack: paths are relative to its URL."""

        def __init__(self) -> None:
            super().__init__()
            self.base_url = base_url
            self.headers["X-Forwarded-Proto"] = "https"
            self.headers["X-Forwarded-For"] = "127.0.0.1"

        def request(self, method, url, *args, **kwargs):
            if url.startswith("/"):
                url = self.base_url + url
            headers = dict(kwargs.pop("headers", None) or {})
            if method.upper() not in ("GET", "HEAD", "OPTIONS", "TRACE"):
                token = self.cookies.get("csrftoken")
                if token:
                    headers.setdefault("X-CSRFToken", token)
                headers.setdefault("Referer", "https://" + urlsplit(self.base_url).netloc + "/")
            kwargs.setdefault("timeout", 60)
            response = super().request(method, url, *args, headers=headers, **kwargs)
            # The cookies are `Secure`, and TLS ends at the (absent) reverse proxy: keep
            # sending them over plain http to gunicorn.
            for cookie in self.cookies:
                cookie.secure = False
            return response

        def csrf_token(self) -> str:
            if "csrftoken" not in self.cookies:
                self.get("/accounts/login/")
            return self.cookies["csrftoken"]

        def login(self, username: str, password: str) -> None:
            """Log in through the login form; raises AssertionError if it did not work."""
            token = self.csrf_token()
            response = self.post(
                "/accounts/login/",
                data={"username": username, "password": password, "csrfmiddlewaretoken": token},
                allow_redirects=False,
            )
            if response.status_code != 302 or "sessionid" not in self.cookies:
                raise AssertionError(
                    f"login as {username} failed: HTTP {response.status_code} "
                    f"{response.text[:300]}"
                )

    return StackClient()


class Stack:
    """The production stack as separate processes; see the module docstring."""

    def __init__(
        self,
        *,
        storage: str = "s3",
        workers: int = 1,
        web_workers: int = 2,
        queues: tuple[str, ...] = ALL_QUEUES,
        redis_db: int | None = None,
        extra_env: dict[str, str] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        if storage not in ("s3", "filesystem"):
            raise ValueError("storage must be 's3' or 'filesystem'")
        self.storage = storage
        self.initial_workers = workers
        self.web_workers = web_workers
        self.queues = tuple(queues)
        self.redis_db = (
            redis_db
            if redis_db is not None
            else int(os.environ.get("XRS_STACK_REDIS_DB", DEFAULT_REDIS_DB))
        )
        self.extra_env = dict(extra_env or {})
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(4)
        self.tmp: Path | None = None
        self.log_dir: Path | None = None
        self.url = ""
        self.env: dict[str, str] = {}
        self.database_name = f"xrs_stack_{self.token}"
        self.database_url = ""
        self.broker_url = ""
        self.s3_endpoint = ""
        self.bucket = f"xrs-stack-{self.token}"
        self.web: subprocess.Popen | None = None
        self.s3: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._worker_count = 0
        self._database_created = False
        self._redis_claimed = False
        self._logs: list[Path] = []

    # --- public interface -------------------------------------------------------------

    def manage(self, *args: str, env: dict[str, str] | None = None, check: bool = True,
               timeout: float = 300) -> subprocess.CompletedProcess:
        """Run `manage.py ARGS` against the stack; raises StackError on a non-zero exit."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise StackError(
                f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def shell(self, code: str) -> str:
        """Run Python code with `manage.py shell -c` and return what it printed."""
        return self.manage("shell", "-c", code).stdout

    def create_user(self, username: str, password: str, *, coordinator: bool = False,
                    superuser: bool = False) -> None:
        """Create a user (a coordinator, a site admin or a plain user such as a reader)."""
        self.shell(
            "from django.contrib.auth.models import Group, User\n"
            f"u = User.objects.create_user({username!r}, {username + '@example.org'!r}, "
            f"{password!r})\n"
            f"u.is_superuser = u.is_staff = {superuser!r}\n"
            "u.save()\n"
            f"if {coordinator!r}:\n"
            "    u.groups.add(Group.objects.get_or_create(name='coordinators')[0])\n"
        )

    def client(self):
        """A new requests.Session for the stack (see the module docstring)."""
        return _make_client(self.url)

    def health(self) -> tuple[int, dict | None]:
        import requests

        try:
            response = requests.get(self.url + "/health/", timeout=10)
        except requests.RequestException:
            return 0, None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def start_worker(self, queues: tuple[str, ...] | None = None,
                     wait: bool = True) -> subprocess.Popen:
        """Start one more Celery worker process (appended to `workers`)."""
        self._worker_count += 1
        name = f"worker{self._worker_count}"
        log = self._log(name)
        proc = self._spawn(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "-Q", ",".join(queues or self.queues),
                "--pool", "solo", "--concurrency", "1",
                "--without-gossip", "--without-mingle",
                "-n", f"{name}-{self.token}@%h",
                "--loglevel", "INFO",
            ],
            log,
        )
        proc.log = log  # type: ignore[attr-defined]
        self.workers.append(proc)
        if wait:
            self._wait_for_log(proc, log, re.compile(r"\bready\.$", re.M), what=name)
        return proc

    def stop_worker(self, proc: subprocess.Popen, *, kill: bool = False,
                    timeout: float = 30) -> int | None:
        """Stop a worker: SIGTERM (warm shutdown) or, with kill=True, SIGKILL (a crash)."""
        self._stop(proc, sig=signal.SIGKILL if kill else signal.SIGTERM, timeout=timeout)
        if proc in self.workers:
            self.workers.remove(proc)
        return proc.returncode

    def logs(self, lines: int = 60) -> str:
        return "\n".join(f"===== {path.name} =====\n{_tail(path, lines)}" for path in self._logs)

    # --- context manager --------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self._print_logs("stack start-up failed")
            self._teardown()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._print_logs(f"test failed inside the stack ({exc_type.__name__})")
        self._teardown()

    # --- start and stop ---------------------------------------------------------------

    def _start(self) -> None:
        pg, rd = _postgres_url(), _redis_url()
        if not pg or not rd:
            raise StackError("the stack needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis)")
        self.tmp = Path(tempfile.mkdtemp(prefix="xrs-stack-"))
        self.log_dir = self.tmp / "logs"
        self.log_dir.mkdir()
        print(f"stack {self.token}: logs under {self.log_dir}", file=sys.stderr)

        self._create_database(pg)
        self._claim_redis(rd)
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_OWN_PREFIXES) and key not in _OWN_NAMES
        }
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DJANGO_ENV="production",
            DJANGO_SECRET_KEY="stack-test-" + secrets.token_urlsafe(48),
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DJANGO_SECURE_SSL_REDIRECT="false",
            DJANGO_LOG_LEVEL="INFO",
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=self.broker_url,
            XRS_VAR_DIR=str(self.tmp / "var"),
            XRS_STORAGE=self.storage,
            PYTHONUNBUFFERED="1",
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_WORKERS=str(self.web_workers),
        )
        if self.storage == "s3":
            env.update(self._start_s3())
        else:
            env["XRS_MEDIA_ROOT"] = str(self.tmp / "media")
        env.update(self.extra_env)
        self.env = env

        self.manage("migrate", "--noinput")
        self._collectstatic()
        self.web = self._spawn(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
            self._log("gunicorn"),
        )
        for _ in range(self.initial_workers):
            self.start_worker(wait=False)
        deadline = time.monotonic() + self.start_timeout
        for proc in self.workers:
            self._wait_for_log(proc, proc.log, re.compile(r"\bready\.$", re.M),
                               what="celery worker", deadline=deadline)
        status, body = 0, None
        while time.monotonic() < deadline:
            self._check_alive(self.web, "gunicorn")
            status, body = self.health()
            if status == 200:
                return
            time.sleep(0.3)
        raise StackError(f"/health/ did not become ok: HTTP {status} {body}")

    def _collectstatic(self) -> None:
        """`collectstatic` (with whitenoise's compression: slow) once per set of static sources.

        The collected files are cached under the system's temporary directory, keyed by the
        project's static/ folder and the versions of the packages that ship static files; the
        stack's STATIC_ROOT links to the cache.
        """
        cache = Path(tempfile.gettempdir()) / f"xrs-stack-static-{_static_key()}"
        for old in cache.parent.glob("xrs-stack-static-*"):  # caches of older static files
            with contextlib.suppress(OSError):
                if old != cache and time.time() - old.stat().st_mtime > 24 * 3600:
                    shutil.rmtree(old, ignore_errors=True)
        if not (cache / ".complete").exists():
            build = Path(tempfile.mkdtemp(prefix="xrs-stack-static-build-"))
            try:
                self.manage("collectstatic", "--noinput", env={"XRS_VAR_DIR": str(build)})
                (build / "static" / ".complete").touch()
                with contextlib.suppress(OSError):  # another stack built it meanwhile
                    os.rename(build / "static", cache)
            finally:
                shutil.rmtree(build, ignore_errors=True)
        var = Path(self.env["XRS_VAR_DIR"])
        var.mkdir(parents=True, exist_ok=True)
        (var / "static").symlink_to(cache, target_is_directory=True)

    def _create_database(self, server_url: str) -> None:
        import psycopg

        with psycopg.connect(_with_database(server_url, "postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database_name}"')
        self._database_created = True
        self.database_url = _with_database(server_url, self.database_name)

    def _drop_database(self) -> None:
        import psycopg

        server_url = _postgres_url()
        if not self._database_created or not server_url:
            return
        with psycopg.connect(_with_database(server_url, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        self._database_created = False

    def _claim_redis(self, server_url: str) -> None:
        import redis

        parts = urlsplit(server_url)
        self.broker_url = urlunsplit((parts.scheme, parts.netloc, f"/{self.redis_db}", "", ""))
        client = redis.Redis.from_url(self.broker_url)
        claim = f"{self.token}:{os.getpid()}:{socket.gethostname()}"
        if not client.set(_CLAIM_KEY, claim, nx=True, ex=3 * 3600) and not _stale_claim(
            client.get(_CLAIM_KEY)
        ):
            raise StackError(
                f"Redis database {self.redis_db} is in use by another stack "
                f"(key {_CLAIM_KEY}); pass Stack(redis_db=N) or set XRS_STACK_REDIS_DB"
            )
        client.set(_CLAIM_KEY, claim, ex=3 * 3600)
        self._redis_claimed = True
        for key in client.scan_iter(count=1000):
            if key != _CLAIM_KEY.encode():
                client.delete(key)

    def _release_redis(self) -> None:
        import redis

        if not self._redis_claimed:
            return
        client = redis.Redis.from_url(self.broker_url)
        owner = (client.get(_CLAIM_KEY) or b"").decode()
        if owner.split(":", 1)[0] == self.token:
            client.flushdb()
        self._redis_claimed = False

    def _start_s3(self) -> dict[str, str]:
        import boto3

        port = _free_port()
        self.s3_endpoint = f"http://127.0.0.1:{port}"
        self.s3 = self._spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            self._log("moto-s3"),
        )
        credentials = {"aws_access_key_id": "stack-key", "aws_secret_access_key": "stack-secret"}
        s3 = boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1",
                          **credentials)
        deadline = time.monotonic() + 60
        while True:
            self._check_alive(self.s3, "moto S3 server")
            try:
                s3.create_bucket(Bucket=self.bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return {
            "XRS_S3_BUCKET": self.bucket,
            "XRS_S3_ENDPOINT_URL": self.s3_endpoint,
            "XRS_S3_REGION": "us-east-1",
            "XRS_S3_ACCESS_KEY_ID": credentials["aws_access_key_id"],
            "XRS_S3_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            "XRS_S3_PREFIX": "media",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def _teardown(self) -> None:
        for proc in list(self.workers):
            with contextlib.suppress(Exception):
                self.stop_worker(proc)
        if self.web is not None:
            with contextlib.suppress(Exception):
                self._stop(self.web)
        if self.s3 is not None:
            with contextlib.suppress(Exception):
                self._stop(self.s3)
        for step in (self._drop_database, self._release_redis):
            try:
                step()
            except Exception as exc:
                print(f"stack {self.token}: teardown: {exc!r}", file=sys.stderr)
        if self.tmp is not None and os.environ.get("XRS_STACK_KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers ----------------------------------------------------------------------

    def _log(self, name: str) -> Path:
        assert self.log_dir is not None
        path = self.log_dir / f"{name}.log"
        self._logs.append(path)
        return path

    def _spawn(self, command: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.env or None,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped with its children
            )

    @staticmethod
    def _stop(proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    @staticmethod
    def _check_alive(proc: subprocess.Popen | None, what: str) -> None:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with {proc.returncode} during start-up")

    def _wait_for_log(self, proc, log: Path, pattern: re.Pattern, *, what: str,
                      deadline: float | None = None) -> None:
        deadline = deadline or time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            self._check_alive(proc, what)
            if pattern.search(log.read_text(errors="replace")):
                return
            time.sleep(0.3)
        raise StackError(f"{what} did not get ready in time")

    def _print_logs(self, why: str) -> None:
        if self._logs:
            print(f"\n----- stack {self.token}: {why}; logs -----\n{self.logs()}", file=sys.stderr)
