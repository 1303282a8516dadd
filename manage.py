#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingagent.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load settings now so a bad variable is reported plainly
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        sys.exit(2)
    if getattr(settings, "EMBEDDED_REDIS", False):
        from tradingagent.embedded import ensure_embedded_redis

        ensure_embedded_redis(
            port=settings.EMBEDDED_REDIS_PORT, var_dir=settings.VAR_DIR, password=settings.EMBEDDED_REDIS_PASSWORD
        )
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
