"""Phalanx settings.

Every knob is an environment variable with a safe default (documented in `.env.example` and the
README). The defaults give the embedded mode: SQLite and a Celery broker kept on the local disk,
so a machine with only Python runs the whole product. `DATABASE_URL` and `REDIS_URL` (or
`CELERY_BROKER_URL`) switch on PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PHALANX_VAR_DIR", BASE_DIR / "var"))
# The embedded database and file broker live here; kombu's file transport does not create its
# folders, so a fresh checkout gets them now.
for _folder in (VAR_DIR, VAR_DIR / "broker", VAR_DIR / "broker-control", VAR_DIR / "static"):
    _folder.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
if not DEBUG:
    # Production refuses to start half-configured rather than run with a guessable key.
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")
elif not SECRET_KEY:
    SECRET_KEY = "insecure-development-key-never-used-with-debug-off"  # noqa: S105

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
    "members",
    "exchange",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A chunked API body gets a Content-Length (capped), so DRF views see it too.
    "exchange.api.body.ChunkedBodyMiddleware",
    # Serves collected static files (admin, API docs, dashboard) from gunicorn in production.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Where each request's privileged actions come from, for the audit log (members.audit).
    "members.audit.AuditMiddleware",
    # A read-only request reads each member's audiences once for all its reads of the store.
    "exchange.middleware.ReadAudiencesOnceMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A strict Content-Security-Policy on every answer: the dashboard runs no inline script.
    "exchange.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "exchange.urls"
WSGI_APPLICATION = "exchange.wsgi.application"
AUTH_USER_MODEL = "members.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'phalanx.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A kept connection is checked before each request or task reuses it: after a
        # database restart the first request gets a fresh connection instead of a 500.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process and the embedded worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Feed pages stop at their LIMIT after a few thousand index probes, but PostgreSQL costs
    # them as if they read the whole store and JIT-compiles them for seconds: JIT off.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
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
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))

# --- Security headers (checked by `manage.py check --deploy` with the compose settings) ---------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading HSTS is a per-domain opt-in the operator makes (SECURE_HSTS_PRELOAD=1), so its
# absence is not a deployment fault.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- Dashboard sessions ------------------------------------------------------------------------
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# An analyst's working day; the session ends with it, and scripts cannot read the cookie.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# Failed dashboard logins per canonical user name (and per client address) before a pause.
PHALANX_LOGIN_MAX_FAILURES = env_int("PHALANX_LOGIN_MAX_FAILURES", 10)
PHALANX_LOGIN_LOCKOUT_SECONDS = env_int("PHALANX_LOGIN_LOCKOUT_SECONDS", 900)

# --- Body limits -------------------------------------------------------------------------------
# The publish endpoints read their body themselves with this cap, so it holds for every framing.
PHALANX_MAX_BODY_BYTES = env_int("PHALANX_MAX_BODY_BYTES", 128 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)

# --- The exchange ------------------------------------------------------------------------------
PHALANX: dict[str, Any] = {
    # Bundles with more objects than this answer 202 and finish in a Celery task.
    "SYNC_MAX_OBJECTS": env_int("PHALANX_SYNC_MAX_OBJECTS", 1000),
    "MAX_BUNDLE_OBJECTS": env_int("PHALANX_MAX_BUNDLE_OBJECTS", 250_000),
    "MAX_JSON_DEPTH": env_int("PHALANX_MAX_JSON_DEPTH", 20),
    "MAX_PATTERN_LENGTH": env_int("PHALANX_MAX_PATTERN_LENGTH", 4096),
    "MAX_PATTERN_DEPTH": env_int("PHALANX_MAX_PATTERN_DEPTH", 16),
    "MAX_PATTERN_COMPARISONS": env_int("PHALANX_MAX_PATTERN_COMPARISONS", 64),
    "PAGE_SIZE_DEFAULT": env_int("PHALANX_PAGE_SIZE_DEFAULT", 1000),
    "PAGE_SIZE_MAX": env_int("PHALANX_PAGE_SIZE_MAX", 10_000),
    "STATUS_RETENTION_DAYS": env_int("PHALANX_STATUS_RETENTION_DAYS", 7),
    "EXCHANGE_NAME": os.environ.get("PHALANX_EXCHANGE_NAME", "Phalanx Exchange"),
    # A fixed identity for the exchange itself: anonymous publications show it as producer.
    "EXCHANGE_IDENTITY": os.environ.get(
        "PHALANX_EXCHANGE_IDENTITY", "identity--5f1b9a7e-0c7e-4d0a-9d51-2f7f3f5b0c11"
    ),
    "TOKEN_LAST_USED_RESOLUTION_SECONDS": env_int("PHALANX_TOKEN_LAST_USED_RESOLUTION", 60),
    # Integrations: distinct members whose false-positive reports suppress an object in every
    # export; the most observables one lookup may check; the most MISP attributes one import
    # may hold and the most indicators one MISP export converts.
    "FALSE_POSITIVE_THRESHOLD": env_int("PHALANX_FALSE_POSITIVE_THRESHOLD", 2),
    "LOOKUP_MAX_OBSERVABLES": env_int("PHALANX_LOOKUP_MAX_OBSERVABLES", 100_000),
    "MISP_IMPORT_MAX_ATTRIBUTES": env_int("PHALANX_MISP_IMPORT_MAX_ATTRIBUTES", 20_000),
    "MISP_EXPORT_MAX_INDICATORS": env_int("PHALANX_MISP_EXPORT_MAX_INDICATORS", 10_000),
}

# --- Alerts and webhooks -----------------------------------------------------------------------
# Test-only switches: let webhooks reach loopback (127.0.0.0/8, ::1) and use plain http, for a
# receiver on the test machine. Off in production; a test proves the defaults refuse loopback.
PHALANX_WEBHOOK_ALLOW_LOOPBACK = env_bool("PHALANX_WEBHOOK_ALLOW_LOOPBACK", False)
PHALANX_WEBHOOK_ALLOW_HTTP = env_bool("PHALANX_WEBHOOK_ALLOW_HTTP", False)
# After a secret rotation the old secret keeps signing this long, beside the new one.
PHALANX_WEBHOOK_SECRET_OVERLAP_HOURS = env_int("PHALANX_WEBHOOK_SECRET_OVERLAP_HOURS", 24)
_ALERTS_SWEEP_SECONDS = env_int("PHALANX_ALERTS_SWEEP_SECONDS", 30)
PHALANX_ALERTS: dict[str, Any] = {
    "CONNECT_TIMEOUT": float(os.environ.get("PHALANX_WEBHOOK_CONNECT_TIMEOUT", "5")),
    "READ_TIMEOUT": float(os.environ.get("PHALANX_WEBHOOK_READ_TIMEOUT", "10")),
    "RESPONSE_MAX_BYTES": env_int("PHALANX_WEBHOOK_RESPONSE_MAX_BYTES", 64 * 1024),
    # Seconds before each retry of a failed delivery (with +-20% jitter): about a day in all.
    "RETRY_SCHEDULE": [
        int(s)
        for s in env_list("PHALANX_WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000")
    ],
    # Retries due sooner than this are queued with a countdown; later ones the sweeper finds.
    "SHORT_RETRY_SECONDS": 300,
    "SWEEP_SECONDS": _ALERTS_SWEEP_SECONDS,
    # A due delivery whose message has not run this long after it was queued is queued again.
    "SWEEP_GRACE_SECONDS": env_int("PHALANX_ALERTS_SWEEP_GRACE_SECONDS", 120),
    "CIRCUIT_THRESHOLD": env_int("PHALANX_WEBHOOK_CIRCUIT_THRESHOLD", 10),
    "CIRCUIT_COOLDOWN_SECONDS": env_int("PHALANX_WEBHOOK_CIRCUIT_COOLDOWN", 900),
    # Versions per fan-out task, and so the most objects one alert message carries.
    "FANOUT_CHUNK": env_int("PHALANX_ALERTS_FANOUT_CHUNK", 200),
    # Deliveries per task message: they share the database work and are sent in parallel.
    "DELIVERY_BATCH": env_int("PHALANX_ALERTS_DELIVERY_BATCH", 25),
    # How long a batch waits for its slowest sends before leaving them to finish on their own.
    "BATCH_PATIENCE_SECONDS": 1.0,
}


# --- Collective response (read by alerts/response/policy.py; documented there and in .env.example)
def _minutes(name: str, default: str) -> list[int]:
    return [int(v) for v in env_list(name, default)]


_RESPONSE_ESCALATION_SWEEP_SECONDS = env_int("PHALANX_RESPONSE_ESCALATION_SWEEP_SECONDS", 60)
PHALANX_RESPONSE: dict[str, Any] = {
    # Severities whose activations go ACTIVE at once; the others wait for exchange staff.
    "AUTO_ACTIVATE": env_list("PHALANX_RESPONSE_AUTO_ACTIVATE", "high,critical"),
    # Minutes from activation until acknowledge, assess and mitigate are due, per severity.
    "DUE_MINUTES": {
        "low": _minutes("PHALANX_RESPONSE_DUE_LOW", "60,1440,4320"),
        "medium": _minutes("PHALANX_RESPONSE_DUE_MEDIUM", "30,480,2880"),
        "high": _minutes("PHALANX_RESPONSE_DUE_HIGH", "15,240,1440"),
        "critical": _minutes("PHALANX_RESPONSE_DUE_CRITICAL", "15,120,720"),
    },
    # Minutes after a step fell due: re-notify the member, then its backup contacts, then staff.
    "ESCALATION_MINUTES": _minutes("PHALANX_RESPONSE_ESCALATION_MINUTES", "0,15,30"),
    "ESCALATION_SWEEP_SECONDS": _RESPONSE_ESCALATION_SWEEP_SECONDS,
    # A report sharing an indicator value with an open activation this recent joins it.
    "MERGE_WINDOW_HOURS": env_int("PHALANX_RESPONSE_MERGE_WINDOW_HOURS", 72),
    # This many distinct members sighting one indicator within the window open an activation.
    "CORROBORATION_MEMBERS": env_int("PHALANX_RESPONSE_CORROBORATION_MEMBERS", 3),
    "CORROBORATION_WINDOW_HOURS": env_int("PHALANX_RESPONSE_CORROBORATION_WINDOW_HOURS", 24),
    "CORROBORATION_SEVERITY": os.environ.get("PHALANX_RESPONSE_CORROBORATION_SEVERITY", "medium"),
    # An anonymous reporter's sector is shown only if at least this many members share it.
    "K_ANONYMITY": env_int("PHALANX_RESPONSE_K_ANONYMITY", 3),
    # Severity rises to <level> once this many members are affected or likely affected.
    "SEVERITY_AT_AFFECTED": env_list(
        "PHALANX_RESPONSE_SEVERITY_AT_AFFECTED", "medium:3,high:10,critical:25"
    ),
    # Due launches and scans whose task message has not run this long are queued again.
    "SWEEP_GRACE_SECONDS": env_int("PHALANX_RESPONSE_SWEEP_GRACE_SECONDS", 60),
    "MAX_REPORT_OBSERVABLES": env_int("PHALANX_RESPONSE_MAX_REPORT_OBSERVABLES", 1000),
}

# --- REST framework ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["members.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["members.permissions.IsMemberToken"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["exchange.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "exchange.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Phalanx exchange API",
    "DESCRIPTION": "Publish and pull STIX 2.1 intelligence; manage a member's users and tokens.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exchange.api.schema.document_shared_errors",
    ],
    # Swagger UI's assets come from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set that appears under several field names or in several apps.
    "ENUM_NAME_OVERRIDES": {
        "TlpEnum": "members.choices.Tlp",
        "DeliveryStateEnum": "alerts.choices.DeliveryState",
        "AssetKindEnum": "members.choices.AssetKind",
        "ActivationStateEnum": "alerts.response.choices.ActivationState",
        "TaskStateEnum": "alerts.response.choices.TaskState",
        "TaskTransitionEnum": "alerts.response.choices.TaskTransition",
        "AidKindEnum": "alerts.response.choices.AidKind",
    },
}

# --- Celery ------------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
if CELERY_BROKER_URL == "filesystem://":
    # The embedded broker: messages are files under var/, so a worker and beat started next to
    # the web process need no server at all.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(VAR_DIR / "broker-control"),
    }
else:
    # Must exceed the longest soft time limit so a running task is not handed out twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 900)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 960)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Separate queues so ingest, delivery and response each scale with their own workers.
CELERY_TASK_ROUTES = {
    "exchange.*": {"queue": "ingest"},
    "alerts.deliver*": {"queue": "delivery"},
    "alerts.response*": {"queue": "response"},
}
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "exchange.purge_expired_statuses": {
        "task": "exchange.purge_expired_statuses",
        "schedule": 3600.0,
    },
    "alerts.sweep": {"task": "alerts.sweep", "schedule": float(_ALERTS_SWEEP_SECONDS)},
    "alerts.seal_digests": {"task": "alerts.seal_digests", "schedule": 60.0},
    "alerts.response.escalate": {
        "task": "alerts.response.escalate",
        "schedule": float(_RESPONSE_ESCALATION_SWEEP_SECONDS),
    },
    "alerts.response.sweep": {"task": "alerts.response.sweep", "schedule": 30.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Cache (login throttling, dashboard chart data) ----------------------------------------------
# Shared by every web process through Redis when there is one; per process in embedded mode.
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Mail --------------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "phalanx@localhost")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
