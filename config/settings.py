"""The one settings module, read from the environment through config.env.

Embedded defaults (no variable set) give a zero-setup development install:
SQLite under var/, media under var/media, and Celery tasks executed eagerly
in-process. Eager execution is the default because a broker is a service, and
`make demo` must work on a machine that runs none; set CELERY_BROKER_URL
(e.g. redis://127.0.0.1:6379/0) to send tasks to real workers instead.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from config.env import (
    ImproperlyConfiguredEnv,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_path,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENT = env_choice("DJANGO_ENV", "development", ("development", "production"))
PRODUCTION = ENVIRONMENT == "production"

VAR_DIR = env_path("XRS_VAR_DIR", BASE_DIR / "var")


def _development_secret_key() -> str:
    """A per-install random key kept under var/, never in git."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfiguredEnv(
            "DJANGO_SECRET_KEY must be at least 50 characters in production"
        )
else:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", None) or _development_secret_key()

DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "core",
    "library",
    "explain",
    "studies",
    "analysis",
    # Demo data, models, studies and the load study: above every product app, imported by none.
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Every audit row written while a request runs records its client address.
    "core.middleware.AuditContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # A lost database connection in a view: 503 with a message (page or JSON), not a 500.
    "core.errors.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

if PRODUCTION:
    # Static files from gunicorn without a separate server; runserver serves them in development.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "studies.context_processors.roles",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL", None)
if _database_url:
    try:
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    except Exception as exc:  # dj_database_url raises several types for bad URLs
        raise ImproperlyConfiguredEnv(f"DATABASE_URL is not a valid database URL: {exc}") from None
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # Several processes write (the server, the demo's background precompute, workers):
            # WAL lets readers run beside a writer, IMMEDIATE transactions take the write lock
            # up front (a deferred one cannot wait for it and fails with "database is locked").
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env_path("XRS_MEDIA_ROOT", VAR_DIR / "media")
# Media holds de-identified patient images: it is never served as public static
# files, only through views that check permissions.
MEDIA_URL = "/media-is-not-served/"  # stored files go out only through permission-checked views
# Cases, masks, models and explanations live in the default storage: the local file system
# (one machine) or S3-compatible object storage shared by the web servers and any number of
# workers on other hosts (XRS_STORAGE=s3; see docs/deployment.md).
XRS_STORAGE = env_choice("XRS_STORAGE", "filesystem", ("filesystem", "s3"))
if XRS_STORAGE == "s3":
    _s3_endpoint = env_str("XRS_S3_ENDPOINT_URL", None)
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("XRS_S3_BUCKET"),
            "endpoint_url": _s3_endpoint,
            # S3-compatible servers (MinIO, Ceph, moto) answer at one host: path-style URLs
            # (`endpoint/bucket/key`) unless told otherwise; AWS itself picks (auto).
            "addressing_style": env_choice(
                "XRS_S3_ADDRESSING_STYLE",
                "path" if _s3_endpoint else "auto",
                ("auto", "path", "virtual"),
            ),
            "region_name": env_str("XRS_S3_REGION", None),
            "access_key": env_str("XRS_S3_ACCESS_KEY_ID", None),
            "secret_key": env_str("XRS_S3_SECRET_ACCESS_KEY", None),
            "location": env_str("XRS_S3_PREFIX", ""),
            # Patient images are never public: no ACLs, signed URLs are not handed out
            # (files leave only through permission-checked views); an existing name is never
            # overwritten (a new one is chosen, as on the file system).
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Authentication: django-axes locks a username (from one address) out after repeated
# failed logins; ModelBackend does the actual checking.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("XRS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("XRS_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client address (for the lockout and the audit trail): behind XRS_PROXY_COUNT trusted
# reverse proxies it is the entry they appended to X-Forwarded-For, otherwise the peer address
# (see core.middleware.client_ip; django-ipware is not used).
XRS_PROXY_COUNT = env_int("XRS_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "core.middleware.client_ip"
SESSION_COOKIE_AGE = env_int("XRS_SESSION_HOURS", 12, minimum=1) * 3600

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Security: strict in production, usable over plain http in development.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Content Security Policy: only the app's own scripts, styles and images; no inline script
# or style (templates use static files; a nonce is available as request.csp_nonce).
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Load balancers and orchestrators probe the health check over plain http on the backend.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]

# --- Uploads: large DICOM files and zip archives stream to disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("XRS_UPLOAD_MAX_FILES", 1000, minimum=1)

# --- Case library limits (per file).
XRS_IMPORT_MAX_BYTES = env_int("XRS_IMPORT_MAX_BYTES", 512 * 1024 * 1024, minimum=1024)
XRS_IMPORT_MAX_PIXELS = env_int("XRS_IMPORT_MAX_PIXELS", 64 * 1024 * 1024, minimum=64)
XRS_IMPORT_MAX_ARCHIVE_BYTES = env_int("XRS_IMPORT_MAX_ARCHIVE_BYTES", 4 * 1024**3, minimum=1024)
# A secret salt for consistent per-patient date shifts and UID replacement.
# Derived from SECRET_KEY unless set; changing it changes future pseudonyms only.
XRS_DEID_SECRET = env_str("XRS_DEID_SECRET", None) or SECRET_KEY

# --- REST framework and OpenAPI schema.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "xai-reader-study API",
    "DESCRIPTION": "Case library, model registry and (later) studies and analysis.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery. Two queues: `default` and `gpu` (long model work, one task at a
# time per worker process). Time limits stay below the broker's visibility
# timeout so that a task is never redelivered while it still runs.
_broker = env_str("CELERY_BROKER_URL", None)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", _broker is None)
# Without a broker, tasks run in-process; "memory://" keeps Celery from looking for AMQP.
CELERY_BROKER_URL = _broker or "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", None)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 50 * 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 55 * 60, minimum=1)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 2 * 60 * 60, minimum=5)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfiguredEnv(
        "CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT"
    )
if CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    raise ImproperlyConfiguredEnv("CELERY_TASK_TIME_LIMIT must be below CELERY_VISIBILITY_TIMEOUT")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("DJANGO_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
    },
    # django-axes prints a start-up banner at INFO in every process and command; its failed logins
    # and lock-outs are logged at WARNING and recorded in the audit trail anyway.
    # WeasyPrint logs each layout step of every PDF at INFO (and fontTools its subsetting).
    "loggers": {
        "axes.apps": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
if CELERY_TASK_ALWAYS_EAGER:
    # Tasks run inside the command or request that enqueued them (no broker): Celery's line per
    # finished task and kombu's note about the in-memory broker are chatter there, not news.
    LOGGING["loggers"].update(
        {"celery.app.trace": {"level": "WARNING"}, "kombu.connection": {"level": "ERROR"}}
    )

EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "xai-reader-study <noreply@localhost>")
# Absolute links in e-mails (invitations) start with this.
SITE_URL = env_str("XRS_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
INVITATION_VALID_DAYS = env_int("XRS_INVITATION_VALID_DAYS", 14, minimum=1)
