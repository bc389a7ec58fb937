"""
Settings for PayChain Realtime.

Every environment variable the project reads is read here and nowhere else
(see `.env.example` for the list). The realtime server's own knobs live in the
one `REALTIME` dict below and are read through `realtime.conf.realtime_settings`.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url

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


# --- Core -------------------------------------------------------------------

# The default key is for local development only; `manage.py check --deploy` warns about it.
DEFAULT_SECRET_KEY = "django-insecure-paychain-realtime-development-key-change-me"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "") or DEFAULT_SECRET_KEY
DEBUG = env_bool("DJANGO_DEBUG", True)
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
    "channels",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (the ASGI server's sync workers) write to one file.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

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
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SIMPLE_JWT = {
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "user_id",
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

# --- The realtime server ----------------------------------------------------------
# Documented defaults live in realtime/conf.py; only what the environment sets
# is overridden here.
REALTIME = {
    "BROADCAST_API_KEYS": env_list("BROADCAST_API_KEYS"),
    "REDIS_PREFIX": CHANNEL_LAYER_PREFIX,
    "PUBLIC_CHANNELS": ["jobs", "announcements", *env_list("REALTIME_PUBLIC_CHANNELS")],
    "ALLOW_ANONYMOUS": env_bool("REALTIME_ALLOW_ANONYMOUS", True),
    "MAX_FRAME_BYTES": env_int("REALTIME_MAX_FRAME_BYTES", 64 * 1024),
    "RATE_LIMIT_FRAMES": env_int("REALTIME_RATE_LIMIT_FRAMES", 100),
    "RATE_LIMIT_SECONDS": float(os.environ.get("REALTIME_RATE_LIMIT_SECONDS", "") or 10),
    "MAX_SUBSCRIPTIONS": env_int("REALTIME_MAX_SUBSCRIPTIONS", 100),
    "MAX_SOCKET_BUFFER_BYTES": env_int("REALTIME_MAX_SOCKET_BUFFER_BYTES", 1024 * 1024),
    "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
    "MAX_SOCKETS_PER_USER": env_int("REALTIME_MAX_SOCKETS_PER_USER", 20),
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
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
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
