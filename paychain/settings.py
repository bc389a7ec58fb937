"""
Settings for PayChain Realtime.

Every environment variable the project reads is read here and nowhere else
(see `.env.example` for the list). The realtime server's own knobs live in the
one `REALTIME` dict below and are read through `realtime.conf.realtime_settings`.
"""

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from realtime.redis_clients import retry_once

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_VALUES = {"1", "true", "yes", "on"}


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in TRUE_VALUES


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate ("10/min", "20/hour", "5/s"), checked at start."""
    value = os.environ.get(name, "").strip() or default
    if not re.fullmatch(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(f'{name}={value!r}: expected a rate such as "10/min".')
    return value


# --- Core -------------------------------------------------------------------

# The default key is for local development only; `manage.py check --deploy` warns about it.
DEFAULT_SECRET_KEY = "django-insecure-paychain-realtime-development-key-change-me"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip() or DEFAULT_SECRET_KEY
DEBUG = env_bool("DJANGO_DEBUG", True)
BROADCAST_API_KEYS = env_list("BROADCAST_API_KEYS")
# With DEBUG off (production) nothing starts on the development key or with
# POST /broadcast refused for want of keys: every process (server, migrate,
# the expiry loop) stops here, naming what to set.
_missing = [
    name
    for name, value in (
        ("DJANGO_SECRET_KEY", SECRET_KEY != DEFAULT_SECRET_KEY),
        ("BROADCAST_API_KEYS", bool(BROADCAST_API_KEYS)),
    )
    if not value
]
if not DEBUG and _missing:
    raise ImproperlyConfigured(
        f"DJANGO_DEBUG is false, so {' and '.join(_missing)} must be set "
        "(see .env.example): refusing to start. Set DJANGO_DEBUG=true for local development."
    )
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")

INSTALLED_APPS = [
    "realtime",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    # Refresh tokens rotate, and logout blacklists them (SIMPLE_JWT below).
    "rest_framework_simplejwt.token_blacklist",
    # /api/schema/ and /api/docs/ (Swagger UI from our own static files, no CDN).
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's) from STATIC_ROOT, under any server, DEBUG off too.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # API paths: 413 JSON for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, and
    # Django's error pages (404, 500, their DEBUG pages) as JSON.
    "realtime.exceptions.json_api_errors",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "paychain.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "paychain.asgi.application"

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

# SQLite (a file beside the code) is the embedded default; production runs
# PostgreSQL (DATABASE_URL=postgres://..., through psycopg 3).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (the ASGI server's sync workers, the outbox relay) and
    # processes write to one file. WAL: readers never wait for the writer.
    # IMMEDIATE: a transaction takes the write lock when it begins, so a
    # busy writer makes it wait (up to `timeout` seconds) instead of failing
    # with "database is locked" when a read turns into a write.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A host that does not answer fails the connection within 3 s (unless the
    # URL sets `?connect_timeout=`), so /health's probe is never stuck on it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)

AUTH_USER_MODEL = "jobs.User"
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
# The JavaScript client (clients/js, @paychain/realtime) as the dashboard at `/`
# loads it: the package's own source, served at static/paychain-realtime/.
STATICFILES_DIRS = [("paychain-realtime", BASE_DIR / "clients" / "js" / "src")]
# Where `manage.py collectstatic` puts the static files and WhiteNoise serves them from.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", "").strip() or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # collectstatic also writes a gzip copy of each file for WhiteNoise to send.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The largest request body read (Django's default is 2.5 MB): over it, API
# paths answer 413 `payload_too_large` before parsing (realtime.exceptions).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- HTTPS-only deployments ---------------------------------------------------
# One switch: DJANGO_SECURE_HTTPS=true turns on every HTTPS-only setting. Off by
# default so that the plain-HTTP development run and the tests work.
SECURE_HTTPS = env_bool("DJANGO_SECURE_HTTPS", False)
if SECURE_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- CORS ---------------------------------------------------------------------
CORS_ALLOWED_ORIGINS_RAW = env_list("CORS_ALLOWED_ORIGINS", "http://localhost:5173")
if "*" in CORS_ALLOWED_ORIGINS_RAW:
    CORS_ALLOW_ALL_ORIGINS = True
    CORS_ALLOWED_ORIGINS: list[str] = []
else:
    CORS_ALLOWED_ORIGINS = CORS_ALLOWED_ORIGINS_RAW

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's handler, adding the error's `code` beside `detail`.
    "EXCEPTION_HANDLER": "realtime.exceptions.exception_handler",
    # DRF's JSONParser, answering 400 (not 500) to JSON nested too deeply.
    "DEFAULT_PARSER_CLASSES": ["realtime.parsers.JSONParser"],
    # Login and registration throttles (jobs.throttling), in DRF's rate format
    # ("10/min", "20/hour"); over the rate: 429 {"detail", "code": "throttled"}.
    "DEFAULT_THROTTLE_RATES": {
        "login": env_rate("THROTTLE_LOGIN_RATE", "10/min"),
        "register": env_rate("THROTTLE_REGISTER_RATE", "20/hour"),
    },
    # A client's address for the throttles is the connection's peer as the
    # server reports it, never a client-sent X-Forwarded-For.
    "NUM_PROXIES": 0,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

# The OpenAPI document of the HTTP API (/api/schema/, realtime/schema.py).
SPECTACULAR_SETTINGS = {
    "TITLE": "PayChain Realtime",
    "DESCRIPTION": (
        "The HTTP API of the PayChain real-time server. Errors answer "
        '`{"detail", "code"}`, or per-field messages on 400. The socket protocol '
        "is described by the AsyncAPI document at /api/asyncapi.json."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "realtime.schema.add_error_responses",
    ],
}

SIMPLE_JWT = {
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "user_id",
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1)),
    # Each refresh answers a new refresh token and blacklists the one used;
    # POST /api/auth/logout/ blacklists one (jobs.auth_api).
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# --- Channel layer --------------------------------------------------------------
# REDIS_URL unset: the in-memory layer (one process, the embedded default).
# REDIS_URL set: channels-redis' pub/sub layer, shared by any number of processes.
# Several comma-separated URLs: the layer shards its groups over the hosts, and
# each channel's stream lives on one of them (realtime.redis_clients).
REDIS_URLS = env_list("REDIS_URL")
REDIS_URL = REDIS_URLS[0] if REDIS_URLS else ""
CHANNEL_LAYER_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "").strip() or "paychain"
# Strings of any form; the first encrypts, all decrypt (rotation). Encrypts the
# layer's messages and the history at rest in Redis.
ENCRYPTION_KEYS = env_list("REALTIME_ENCRYPTION_KEYS")
if REDIS_URLS:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": url,
                        # redis-py 8 defaults to 5 s; a publish must give up
                        # before the broadcast view's own deadline.
                        "socket_timeout": 4,
                        "socket_connect_timeout": 3,
                        "health_check_interval": 15,
                        # A command on a connection Redis dropped (a restart)
                        # is retried once on a fresh one.
                        **retry_once(),
                    }
                    for url in REDIS_URLS
                ],
                "prefix": CHANNEL_LAYER_PREFIX,
                **({"symmetric_encryption_keys": ENCRYPTION_KEYS} if ENCRYPTION_KEYS else {}),
                # Group membership here is a live SUBSCRIBE held by each
                # process, so it has no expiry: a socket open longer than this
                # keeps receiving (tests/test_live_cluster.py). Read for
                # compatibility with channels-redis' core layer settings.
                "group_expiry": env_int("CHANNEL_LAYER_GROUP_EXPIRY", 86400),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            # One node channel per process receives every publication: never drop
            # one because a burst filled the default capacity of 100.
            "CONFIG": {"capacity": 100_000, "expiry": 60},
        }
    }

# --- Cache ------------------------------------------------------------------------
# What the login and registration throttles count in. With Redis, every
# process counts in one place; without it, each process counts on its own.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{CHANNEL_LAYER_PREFIX}:cache",
            "OPTIONS": {"socket_timeout": 3, "socket_connect_timeout": 3},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- The realtime server ----------------------------------------------------------
# Documented defaults live in realtime/conf.py; only what the environment sets
# is overridden here.
REALTIME = {
    "BROADCAST_API_KEYS": BROADCAST_API_KEYS,
    "REDIS_PREFIX": CHANNEL_LAYER_PREFIX,
    "PUBLIC_CHANNELS": ["jobs", "announcements", *env_list("REALTIME_PUBLIC_CHANNELS")],
    "ALLOW_ANONYMOUS": env_bool("REALTIME_ALLOW_ANONYMOUS", True),
    "MAX_FRAME_BYTES": env_int("REALTIME_MAX_FRAME_BYTES", 64 * 1024),
    "MAX_PUBLICATION_BYTES": env_int("REALTIME_MAX_PUBLICATION_BYTES", 64 * 1024),
    "RATE_LIMIT_FRAMES": env_int("REALTIME_RATE_LIMIT_FRAMES", 100),
    "RATE_LIMIT_SECONDS": float(os.environ.get("REALTIME_RATE_LIMIT_SECONDS", "") or 10),
    "MAX_SUBSCRIPTIONS": env_int("REALTIME_MAX_SUBSCRIPTIONS", 100),
    "MAX_SOCKET_BUFFER_BYTES": env_int("REALTIME_MAX_SOCKET_BUFFER_BYTES", 1024 * 1024),
    "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
    "MAX_SOCKETS_PER_USER": env_int("REALTIME_MAX_SOCKETS_PER_USER", 20),
    # 0 (the default): no cap on sockets per client address.
    "MAX_SOCKETS_PER_IP": env_int("REALTIME_MAX_SOCKETS_PER_IP", 0),
    "TRUSTED_PROXIES": env_list("REALTIME_TRUSTED_PROXIES"),
    "SESSION_CHECK_INTERVAL": float(os.environ.get("REALTIME_SESSION_CHECK_INTERVAL", "") or 15),
    "HISTORY_SIZE": env_int("REALTIME_HISTORY_SIZE", 100),
    "HISTORY_TTL": env_int("REALTIME_HISTORY_TTL", 600),
    "RELAY_IN_PROCESS": env_bool("REALTIME_RELAY_IN_PROCESS", True),
    "OUTBOX_MAX_ATTEMPTS": env_int("REALTIME_OUTBOX_MAX_ATTEMPTS", 5),
    "OUTBOX_LEASE": float(os.environ.get("REALTIME_OUTBOX_LEASE", "") or 30),
    "OUTBOX_RETRY_MAX": float(os.environ.get("REALTIME_OUTBOX_RETRY_MAX", "") or 5),
    "OUTBOX_RETENTION": env_int("REALTIME_OUTBOX_RETENTION", 3600),
}

# --- Logging ----------------------------------------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {
        # One line per Redis outage from channels-redis, not a traceback a second.
        "redis_outage": {"()": "realtime.logfilters.RedisOutageFilter"},
        # No query string (a socket's ?token=) in any request path logged.
        "redact_query": {"()": "realtime.servers.accesslog.QueryRedactingFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_query"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "realtime": {"level": LOG_LEVEL},
        "jobs": {"level": LOG_LEVEL},
        "paychain": {"level": LOG_LEVEL},
        "channels_redis.pubsub": {"filters": ["redis_outage"]},
        # runserver's access log: once, in our format.
        "django.channels.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
