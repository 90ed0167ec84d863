"""Gunicorn settings for production: `gunicorn -c config/gunicorn.conf.py config.wsgi`.

Everything a deployment changes is read from the environment (see docs/deployment.md):

- GUNICORN_BIND                 address to listen on (default 127.0.0.1:8000; the reverse proxy
                                connects to it; use 0.0.0.0:8000 when the proxy is another host)
- GUNICORN_WORKERS              worker processes (default 2 x CPU cores + 1, at most 8)
- GUNICORN_THREADS              threads per worker (default 1)
- GUNICORN_TIMEOUT              seconds before a silent worker is killed and restarted (default 120:
                                uploads of large DICOM archives and report PDFs take a while)
- GUNICORN_GRACEFUL_TIMEOUT     seconds a worker gets to finish its requests on restart (default 30)
- GUNICORN_KEEPALIVE            seconds to keep an idle proxy connection open (default 5)
- GUNICORN_MAX_REQUESTS         recycle a worker after this many requests (default 1000, 0 = never)
- GUNICORN_FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-Proto/-For are trusted
                                (default 127.0.0.1; the reverse proxy's address)
- GUNICORN_ACCESS_LOG / GUNICORN_ERROR_LOG  files, or "-" for stdout/stderr (default "-")
- GUNICORN_LOG_LEVEL            debug, info, warning, error (default info)
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not an integer") from None


def _str(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


bind = [address.strip() for address in _str("GUNICORN_BIND", "127.0.0.1:8000").split(",")]
workers = _int("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8))
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 120)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = max_requests // 10 if max_requests else 0
forwarded_allow_ips = _str("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# Workers load the application after forking: each gets its own database connections.
preload_app = False
# The workers' heartbeat files in RAM where available: on a disk-backed (or overlay) /tmp a
# slow fsync can make the master kill healthy workers (gunicorn's own advice).
_shm = "/dev/shm"  # noqa: S108 - gunicorn creates its own unpredictable names in it
worker_tmp_dir = _shm if os.path.isdir(_shm) else None

accesslog = _str("GUNICORN_ACCESS_LOG", "-")
errorlog = _str("GUNICORN_ERROR_LOG", "-")
loglevel = _str("GUNICORN_LOG_LEVEL", "info")
# Client address (from the proxy's X-Forwarded-For), request line, status, size, request
# time in microseconds (%(D)s), referrer and user agent. The query string is left out
# (it may carry tokens) and so are cookies.
access_log_format = (
    '%({x-forwarded-for}i)s %(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(D)sus "%(f)s" "%(a)s"'
)
proc_name = "xai-reader-study"
