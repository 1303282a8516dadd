"""Test settings: the real PostgreSQL and Redis (DATABASE_URL / REDIS_URL), fixed keys."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMi1ieXQ=")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from tradingagent.settings import *  # noqa: F403

# The tests speak plain HTTP to the test client and local servers; production's HTTPS settings
# (redirect, HSTS, secure cookies) are checked by `check --deploy` in tests/test_deploy.py.
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation
CELERY_TASK_ALWAYS_EAGER = False

# WhiteNoise warns on every request when STATIC_ROOT is missing; tests serve from the finders.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
