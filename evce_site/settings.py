"""evce settings: one module, configured from environment variables.

This is the only place evce reads its environment: every variable goes
through the typed helpers of ``evce_site.env`` (secrets also from a
``<NAME>_FILE``), and the rest of evce — the Celery app and its beat
schedule, ``manage.py serve``, the first-start setup — reads these settings.
The README's configuration table documents each variable with its default;
``ENV_VARIABLES`` (at the end) lists those read here, and a test holds the
two equal.
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from evce_site import embedded_redis
from evce_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_ip_address,
    env_list,
    env_secret,
    env_str,
    env_time_zone,
    parse_database_url,
    variables_read,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("EVCE_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """Use EVCE_SECRET_KEY (or _FILE), else a key generated once and kept in the data dir."""
    given = env_secret("EVCE_SECRET_KEY", "")
    if given:
        return given
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("EVCE_DEBUG", False)
ALLOWED_HOSTS = env_list("EVCE_ALLOWED_HOSTS", ["*"])
HTTP_PORT = env_int("EVCE_HTTP_PORT", 8000, minimum=1, maximum=65535)
OCPP_PORT = env_int("EVCE_OCPP_PORT", 9979, minimum=1, maximum=65535)
# TLS endpoint for security profile 2; certificate generated into the data dir
# unless EVCE_OCPP_TLS_CERT / EVCE_OCPP_TLS_KEY name one (apps/central_system/tls.py).
OCPP_TLS_ENABLED = env_bool("EVCE_OCPP_TLS", False)
OCPP_TLS_PORT = env_int("EVCE_OCPP_TLS_PORT", 9981, minimum=1, maximum=65535)
OCPP_TLS_CERT = env_str("EVCE_OCPP_TLS_CERT", "")
OCPP_TLS_KEY = env_str("EVCE_OCPP_TLS_KEY", "")
# Threads running the OCPP handlers' database work: -1 = one on SQLite (a single
# writer), four on PostgreSQL; 0 = Channels' shared thread.
OCPP_DB_THREADS = env_int("EVCE_OCPP_DB_THREADS", -1, minimum=-1, maximum=64)
# Stations on security profile 1 or 2 get a new AuthorizationKey once their key
# is this many days old (checked hourly, while they are connected); 0 = never.
STATION_KEY_ROTATION_DAYS = env_int("EVCE_STATION_KEY_ROTATION_DAYS", 0, minimum=0, maximum=3650)
# How often reservations past their expiry are closed.
RESERVATION_CHECK_PERIOD_S = env_float(
    "EVCE_RESERVATION_CHECK_PERIOD_S", 30.0, minimum=1, maximum=3600
)


# --- Processes started by `manage.py serve` (and the Docker services) ------------
# Interface the web server listens on, for HTTP and OCPP alike.
BIND_ADDRESS = env_ip_address("EVCE_BIND", "0.0.0.0")
WORKER_CONCURRENCY = env_int("EVCE_WORKER_CONCURRENCY", 2, minimum=1, maximum=64)
# On an empty install, load the demo site and run its simulated stations and meters.
DEMO_ENABLED = env_bool("EVCE_DEMO", True)
DEMO_METER_PORT = env_int("EVCE_DEMO_METER_PORT", 5020, minimum=1, maximum=65535)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.accounts",
    "apps.siteconfig",
    "apps.devicelog",
    "apps.maintenance",
    "apps.meters",
    "apps.zones",
    "apps.rfid",
    "apps.stations",
    "apps.supervision",
    "apps.central_system",
    "apps.energy",
    "apps.sitefile",
    "apps.dashboard",
    "apps.simulator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.dashboard.middleware.SessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "evce_site.urls"
ASGI_APPLICATION = "evce_site.asgi.application"
WSGI_APPLICATION = None

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
                "django.template.context_processors.i18n",
                "apps.dashboard.context_processors.status_bar",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
_database_url = env_secret("DATABASE_URL", "")
if _database_url:
    _db = parse_database_url(_database_url)
    DATABASES = {
        "default": {
            "ENGINE": _db.engine,
            "NAME": _db.name,
            "USER": _db.user,
            "PASSWORD": _db.password,
            "HOST": _db.host,
            "PORT": _db.port,
        }
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "evce.sqlite3"}
    }

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, worker, beat) share the file: WAL lets readers
    # run beside the writer, IMMEDIATE transactions take the write lock up
    # front (no "database is locked" on lock upgrade) and the busy timeout
    # makes writers wait for each other instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, hot state ---------------------------
REDIS_URL = env_secret("REDIS_URL", "")
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    _socket = embedded_redis.socket_path(DATA_DIR)
    REDIS_URL = f"unix://{_socket}"
    CELERY_BROKER_URL = f"redis+socket://{_socket}"
else:
    CELERY_BROKER_URL = REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # Receivers block in BZPOPMIN for 5 s; redis-py's default 5 s socket
            # timeout would race that reply and kill idle consumers. Its default
            # pool of 100 connections fails (not waits) when a thousand station
            # connections open or close at once.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 4096}],
            "prefix": "evce",
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("EVCE_CELERY_EAGER", False)
# Period of the re-allocation tick, which also renews live profiles (the beat
# schedule in evce_site.celery uses it).
REBALANCE_PERIOD_S = env_float("EVCE_REBALANCE_PERIOD_S", 30.0, minimum=0.1, maximum=3600)
# Validity of a live charging profile; renewed at half-life while evce runs.
SETPOINT_LEASE_S = env_int("EVCE_SETPOINT_LEASE_S", 120, minimum=30, maximum=3600)
# Renewals happen at ticks: a lease shorter than three of them lapses when a
# tick runs late or one renewal fails, and stations fall back while evce runs.
LEASE_MIN_TICKS = 3
if SETPOINT_LEASE_S < LEASE_MIN_TICKS * REBALANCE_PERIOD_S:
    raise ImproperlyConfigured(
        f"EVCE_SETPOINT_LEASE_S={SETPOINT_LEASE_S} must be at least {LEASE_MIN_TICKS} "
        f"re-allocation ticks (EVCE_REBALANCE_PERIOD_S={REBALANCE_PERIOD_S:g} s), "
        f"i.e. {LEASE_MIN_TICKS * REBALANCE_PERIOD_S:g} s or more."
    )
# Time an EV takes to follow a raised setpoint; a fresh sample is asked for then.
EV_RAMP_S = env_int("EVCE_EV_RAMP_S", 3, minimum=1, maximum=30)
# Resolution of the current limits sent to stations, rounded down: many stations
# round a tenth of an amp up to the next amp, so whole amps by default.
PROFILE_STEP_A = env_float("EVCE_PROFILE_STEP_A", 1.0, minimum=0.1, maximum=1.0)
# Time an EV may take to follow a lower limit (IEC 61851: 5 s): capacity a
# decrease frees is given to others only this long after it was accepted.
EV_RESPONSE_S = env_int("EVCE_EV_RESPONSE_S", 5, minimum=0, maximum=60)
# Beat tick of the meter poller; the site's polling period (250-10000 ms) is
# applied on top of it (see apps.meters.tasks).
METER_TICK_MS = env_int("EVCE_METER_TICK_MS", 250, minimum=50, maximum=10000)
# Period of the purge of expired OCPP logs and meter samples.
RETENTION_PERIOD_S = env_float("EVCE_RETENTION_PERIOD_S", 3600.0, minimum=1, maximum=7 * 86400)
# The device log keeps this many entries (the oldest are purged every minute).
DEVICE_LOG_MAX_ENTRIES = env_int(
    "EVCE_DEVICE_LOG_MAX_ENTRIES", 100_000, minimum=1000, maximum=100_000_000
)

# How long a remote action of the API waits for the station's answer (then 504).
STATION_COMMAND_TIMEOUT_S = 30.0

# Who may scrape /metrics without a token: addresses or networks (CIDR).
METRICS_ALLOWED_IPS = env_list("EVCE_METRICS_ALLOWED_IPS", ["127.0.0.1"])
for _network in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"EVCE_METRICS_ALLOWED_IPS: {_network!r} is not an IP address or network"
        ) from None

# --- Authentication -------------------------------------------------------------
# Password of ``manage.py user create`` (asked for when empty).
USER_PASSWORD = env_secret("EVCE_USER_PASSWORD", "")
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "apps.accounts.validators.EvcePasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "dashboard:login"
# Default inactivity timeout; the site setting overrides it for every logged-in
# session (apps.dashboard.middleware.SessionTimeoutMiddleware).
SESSION_COOKIE_AGE = 6000
SESSION_SAVE_EVERY_REQUEST = True

# --- HTTPS-only deployments -----------------------------------------------------
HTTPS_ONLY = env_bool("EVCE_HTTPS_ONLY", False)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if HTTPS_ONLY:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
CSRF_TRUSTED_ORIGINS = env_list("EVCE_CSRF_TRUSTED_ORIGINS", [])

# --- Internationalisation ------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_time_zone("EVCE_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files and uploads ---------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
# Project-wide assets, third-party ones vendored under static/vendor/ (no CDN).
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = DATA_DIR / "uploads"
MEDIA_URL = "/media/"

# --- API ---------------------------------------------------------------------------
# SPEC §9: a token or HTTP Basic (the token first, so that a missing credential
# answers 401 with a challenge); every role reads, ebms and admin write.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.api.authentication.TokenAuthentication",
        "apps.api.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.permissions.ApiRole"],
    "DEFAULT_PAGINATION_CLASS": "apps.api.pagination.OffsetPagination",
    "EXCEPTION_HANDLER": "apps.api.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "evce EBMS API",
    "DESCRIPTION": "Building / energy management interface of evce.",
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The description of the API is public; the resources need a user.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI and ReDoc from evce's own static files: sites often have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Fields of the same name with different choices ("type", "status"): name them.
    "ENUM_NAME_OVERRIDES": {
        "ZoneTypeEnum": ["static", "dynamic"],
        "ReductionTypeEnum": ["percentage", "current"],
        "AvailabilityAnswerEnum": ["accepted", "scheduled", "rejected"],
        "AcceptedAnswerEnum": ["accepted", "rejected"],
        "UnlockAnswerEnum": ["unlocked", "unlockfailed", "notsupported"],
        "OcppStatusEnum": "apps.stations.api.serializers.OCPP_STATUSES",
    },
}

# --- Logging -----------------------------------------------------------------------
LOG_LEVEL = env_choice("EVCE_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The meter poll runs every 250 ms: one line per task would drown the log.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
        "pymodbus": {"level": "CRITICAL"},  # failures are reported by evce's own messages
    },
}

# Every environment variable read above (the README's configuration table lists
# the same names; tests/evce_site/test_settings.py checks it).
ENV_VARIABLES = variables_read()
