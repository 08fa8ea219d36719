"""qmtjq settings: every knob comes from the environment (or `.env`).

See `.env.example` for the list with comments. Production secrets have no
default and fail loudly; local defaults exist only where they are safe.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from qmtjq.content_policy import content_security_policy

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    # Real environment variables win over the file.
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off. Set it in the environment or in .env "
            "(`python manage.py serve` writes a random one to .env on first start)."
        )
    SECRET_KEY = "insecure-local-debug-only-key"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The address JoinQuant's cloud reaches this server at (with its path prefix), written into the
# downloaded jq_qmt_api.py; empty = the address the admin is browsing from.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="")
# Reverse proxies whose X-Forwarded-For we believe when recording who uploaded.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SILENCED_SYSTEM_CHECKS: list[str] = []
if BEHIND_TLS_PROXY:
    # The proxy terminates TLS and says so in X-Forwarded-Proto (it must overwrite a client's own).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    # Both are off unless asked for: sub-domains may still serve plain http, and a preload
    # listing is baked into browsers for months. `check --deploy` advises them; we say no on
    # purpose, so its two hints are silenced while they are off.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_INCLUDE_SUBDOMAINS:
        SILENCED_SYSTEM_CHECKS.append("security.W005")
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS.append("security.W021")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "csp",
    "qmtjq",
    "positions",
    "execution",
    "rotation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "qmtjq.middleware.SiteLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "qmtjq.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "qmtjq.wsgi.application"

# --- Database -------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            # Writers queue instead of failing with "database is locked";
            # IMMEDIATE takes the write lock at BEGIN so two upload
            # transactions never deadlock upgrading a read lock.
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif _db["ENGINE"] == "django.db.backends.mysql":
    _db.setdefault("OPTIONS", {}).setdefault("charset", "utf8mb4")
    _db["OPTIONS"].setdefault("isolation_level", "read committed")
    _db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
_db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared by every web process and the job cluster: rate limits, the credential
# cache's version (qmtjq.credential_cache). The database cache needs no extra
# service (its table is created by `migrate`); CACHE_URL=redis://127.0.0.1:6379/1
# uses Django's built-in Redis cache. A per-process cache (locmemcache://) breaks
# the rate limit and the credential invalidation as soon as there are two processes.
CACHE_TABLE = "qmtjq_cache"
CACHES = {"default": env.cache("CACHE_URL", default=f"dbcache://{CACHE_TABLE}")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache":
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 100_000)

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# --- Admin login lockout (django-axes) -------------------------------------------
# Repeated wrong passwords lock the user name and, separately, the address;
# the lock ends after AXES_COOLOFF_MINUTES or when a superuser deletes the
# attempt in admin (Axes → Access attempts) or runs `manage.py axes_reset`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked.html"
# The same address rules as the API: X-Forwarded-For only from TRUSTED_PROXIES.
AXES_CLIENT_IP_CALLABLE = "positions.authentication.client_ip"
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "/"

# --- i18n -----------------------------------------------------------------
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
# An explicit LANGUAGE_CODE decides the default page language; only without it does the
# browser's Accept-Language count. The header switch (a cookie) always wins.
LANGUAGE_FROM_BROWSER = "LANGUAGE_CODE" not in env.ENVIRON
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates and times read the same in every language and in admin: 2026-12-02 14:30:00.
FORMAT_MODULE_PATH = ["qmtjq.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# No uploads are served; an explicit prefix keeps Django's test server from treating every path as a media file.
MEDIA_URL = "media/"
MEDIA_ROOT = BASE_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Email ----------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="qmtjq@localhost")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# The same notification (event and key) within this many minutes is recorded once and sent once.
NOTIFICATION_FOLD_MINUTES = env.int("NOTIFICATION_FOLD_MINUTES", default=30)
# Send notifications from a background thread so a slow channel never holds up trading.
NOTIFICATION_SEND_ASYNC = env.bool("NOTIFICATION_SEND_ASYNC", default=True)

# --- Security headers -----------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response; what it allows and why: qmtjq/content_policy.py.
CONTENT_SECURITY_POLICY = content_security_policy()
SESSION_COOKIE_HTTPONLY = True

# --- Trading --------------------------------------------------------------
# Global kill switch (DESIGN §5.7): when off no worker sends any order.
TRADING_ENABLED = env.bool("TRADING_ENABLED", default=True)
# Real quotes over HTTP (Tencent's public quote service) for paper accounts
# and as a fallback when xtdata is unavailable. Off by default: no outside
# host is contacted unless asked for.
QUOTE_HTTP_ENABLED = env.bool("QUOTE_HTTP_ENABLED", default=False)
# The live worker (DESIGN §6): xttrader's synchronous calls have no time limit
# of their own, so every MiniQMT call runs with one; a call past it counts as
# a disconnect (a timed-out order stays "sending" until reconcile finds it).
QMT_CONNECT_TIMEOUT_SECONDS = env.float("QMT_CONNECT_TIMEOUT_SECONDS", default=20.0)
QMT_CALL_TIMEOUT_SECONDS = env.float("QMT_CALL_TIMEOUT_SECONDS", default=10.0)
# A MiniQMT that hangs while the worker has nothing to ask would go unnoticed until
# the next query: a period without any answered call ends with one cheap probe
# (query_stock_asset) bounded by its own, shorter timeout. Worst case to notice a
# hang: QMT_PROBE_EVERY_SECONDS + QMT_PROBE_TIMEOUT_SECONDS (the probe never waits longer
# than QMT_CALL_TIMEOUT_SECONDS). QMT_PROBE_EVERY_SECONDS=0 turns the probe off.
QMT_PROBE_EVERY_SECONDS = env.float("QMT_PROBE_EVERY_SECONDS", default=2.0)
QMT_PROBE_TIMEOUT_SECONDS = env.float("QMT_PROBE_TIMEOUT_SECONDS", default=3.0)
# A worker whose lease is this old without renewal may be taken over by another.
QMT_LEASE_TTL_SECONDS = env.float("QMT_LEASE_TTL_SECONDS", default=30.0)
# After this many rounds in a row whose order for a code timed out unfilled,
# that code is held for the day (notified, skipped with the reason).
QMT_UNFILLED_ROUNDS_HOLD = env.int("QMT_UNFILLED_ROUNDS_HOLD", default=3)

# Fernet key(s) encrypting stored secrets (Factor Cat password and token, webhook URLs, bot signing secrets).
# Comma-separated: the first encrypts, all decrypt (key rotation). No default.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

# --- Ingest API -----------------------------------------------------------
API_TOKEN_MAX_SKEW_SECONDS = env.int("API_TOKEN_MAX_SKEW_SECONDS", default=300)
API_MAX_BODY_BYTES = 1024 * 1024
API_MAX_POSITIONS = 5000
# After "Rotate API key" in admin the old key keeps working this long (the form's default).
API_KEY_ROTATION_GRACE_HOURS = env.int("API_KEY_ROTATION_GRACE_HOURS", default=24)
API_DEFAULT_RATE_LIMIT_PER_MINUTE = env.int("API_DEFAULT_RATE_LIMIT_PER_MINUTE", default=120)
# A strategy whose last upload or confirmation is older than this shows a
# "stale" badge on the overview page.
STRATEGY_STALE_AFTER_HOURS = env.int("STRATEGY_STALE_AFTER_HOURS", default=24)
# Django refuses bodies above this before our view sees them; we answer 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

# --- Remote trading PC (DESIGN §2, server side) ---------------------------
# A feed request whose ?version= is current waits this long for a change, then answers 304.
WORKER_FEED_WAIT_SECONDS = env.float("WORKER_FEED_WAIT_SECONDS", default=25.0)
# How often the per-process poller re-reads the versions of accounts someone waits for.
WORKER_FEED_POLL_INTERVAL = env.float("WORKER_FEED_POLL_INTERVAL", default=0.5)
# A waiting feed request holds a web thread: at most this many wait per web process (unset: its
# threads less one, so uploads and pages always find a thread). Past it the feed answers 304 at once,
# with Retry-After WORKER_FEED_BUSY_RETRY_SECONDS, and the trading PC asks again after that.
WORKER_FEED_MAX_WAITERS = (
    max(env.int("WORKER_FEED_MAX_WAITERS"), 0) if env.str("WORKER_FEED_MAX_WAITERS", default="").strip() else None
)
WORKER_FEED_BUSY_RETRY_SECONDS = max(env.int("WORKER_FEED_BUSY_RETRY_SECONDS", default=2), 1)
# Reports above this size are refused with 413 (never above the 1 MiB body limit).
WORKER_REPORT_MAX_BYTES = min(env.int("WORKER_REPORT_MAX_BYTES", default=API_MAX_BODY_BYTES), API_MAX_BODY_BYTES)
# Server jobs (take-profit/stop-loss) use quotes reported by trading PCs while younger than this.
WORKER_QUOTE_MAX_AGE_SECONDS = env.int("WORKER_QUOTE_MAX_AGE_SECONDS", default=60)
# The trading PC's side: where the server is and how to sign in (used by execution.remote.client).
QMTJQ_SERVER_URL = env.str("QMTJQ_SERVER_URL", default="")
QMTJQ_WORKER_CLIENT_ID = env.str("QMTJQ_WORKER_CLIENT_ID", default="")
QMTJQ_WORKER_API_KEY = env.str("QMTJQ_WORKER_API_KEY", default="")
QMTJQ_WORKER_PRIVATE_KEY_FILE = env.str("QMTJQ_WORKER_PRIVATE_KEY_FILE", default="")
# Turning TLS verification off is explicit and logged on every start of the client.
QMTJQ_SERVER_TLS_VERIFY = env.bool("QMTJQ_SERVER_TLS_VERIFY", default=True)
# Quote sources whose prices the trading PC reports to the server (broker data only by default:
# a paper account's bookkeeping prices must never drive the server's take-profit/stop-loss).
QMTJQ_WORKER_REPORT_QUOTE_SOURCES = env.list("QMTJQ_WORKER_REPORT_QUOTE_SOURCES", default=["xtdata"])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "positions.authentication.ApiClientAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["positions.permissions.IsApiClientOrStaff"],
    "DEFAULT_THROTTLE_CLASSES": ["positions.throttling.ApiClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["qmtjq.parsers.JsonBodyParser"],
    "EXCEPTION_HANDLER": "qmtjq.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "qmtjq API",
    "DESCRIPTION": "JoinQuant target positions ingest and read API.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "positions.schema.error_responses_hook",
    ],
}

# --- django-q2 ------------------------------------------------------------
Q_CLUSTER = {
    # Clusters sharing a broker and a database must share the name (it names the queue).
    "name": env.str("Q_CLUSTER_NAME", default="qmtjq"),
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 300,
    "retry": 600,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Jobs",
}

# The queue between the scheduler and the workers: the database (ORM broker) by
# default; Redis (Q_BROKER_URL=redis://127.0.0.1:6379/0) when several clusters on
# several machines share the jobs. Schedules and results stay in the database
# either way, and every job is idempotent by a database row, so two clusters on
# one database never run a slot twice.
Q_BROKER_URL = env.str("Q_BROKER_URL", default="")
if Q_BROKER_URL:
    if not Q_BROKER_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("Q_BROKER_URL must be a redis://, rediss:// or unix:// URL (or unset)")
    del Q_CLUSTER["orm"]
    Q_CLUSTER["redis"] = Q_BROKER_URL

# django-q2 and the in-process job runner log every task they run at INFO,
# which buries what matters (the admin password, errors); `serve
# --jobs-log-level INFO` or Q_LOG_LEVEL=INFO shows them.
Q_LOG_LEVEL = env.str("Q_LOG_LEVEL", default="WARNING").upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django-q": {"level": Q_LOG_LEVEL},
        "qmtjq.jobs": {"level": Q_LOG_LEVEL},
    },
}

# --- Version and update notice ----------------------------------------------
# Off unless set: a URL answering JSON about the latest release, either
# GitHub's `.../releases/latest` ({"tag_name", "html_url"}) or
# {"version": "1.2.3", "url": "https://..."}. `serve` looks at most once a
# day, in the background, and only prints a notice (admin shows it in the
# footer); nothing is ever downloaded or installed.
UPDATE_CHECK_URL = env.str("UPDATE_CHECK_URL", default="")
UPDATE_CHECK_STATE_FILE = Path(env.str("UPDATE_CHECK_STATE_FILE", default=str(BASE_DIR / "var" / "update_check.json")))
