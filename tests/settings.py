"""Test settings: the real PostgreSQL and Redis (DATABASE_URL / REDIS_URL), fixed keys."""

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMi1ieXQ=")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_url_of_worker(url: str, worker: str) -> str:
    """REDIS_URL's database number plus the xdist worker's number (gw0 +0, gw1 +1, ...)."""
    offset = int(worker.removeprefix("gw"))
    parts = urlsplit(url)
    if parts.scheme == "unix":  # unix:///path/redis.sock?db=2
        query = dict(parse_qsl(parts.query))
        query["db"] = str(int(query.get("db", 0)) + offset)
        return f"{url.partition('?')[0]}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{int(parts.path.strip('/') or 0) + offset}"))


# pytest-xdist: pytest-django gives each worker its own PostgreSQL database (test_<name>_gw0, ...);
# here each worker also gets its own Redis database, the next ones after REDIS_URL's: the
# throttles, the channel layer's groups and Celery's queues are keyed by ids that the workers'
# databases all reuse. The processes a test starts inherit the chosen URL (and the marker that
# keeps them from adding the offset again).
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and os.environ.get("TEST_REDIS_URL_OF_WORKER") != _worker:
    os.environ["REDIS_URL"] = _redis_url_of_worker(os.environ["REDIS_URL"], _worker)
    os.environ["TEST_REDIS_URL_OF_WORKER"] = _worker

from tradingagent.settings import *  # noqa: E402, F403

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
