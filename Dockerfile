# The one image of web, worker, beat, flower and migrate (compose.yaml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/var/lib/tradingagent

WORKDIR /app

# Requirements first: the layer is rebuilt only when they change, not on every code edit.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected at build time (WhiteNoise serves them from STATIC_ROOT under VAR_DIR).
# Throwaway values: collectstatic needs valid settings, not the real database, Redis or keys.
RUN SECRET_KEY=collectstatic-only FIELD_ENCRYPTION_KEY=Y29sbGVjdHN0YXRpYy1vbmx5LW5vdC1hLXNlY3JldCE= \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 REDIS_URL=redis://127.0.0.1:6379/0 \
    python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 --home-dir /app tradingagent \
 && chown -R tradingagent "$VAR_DIR"

USER tradingagent
EXPOSE 8000 5555
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "tradingagent.asgi:application"]
