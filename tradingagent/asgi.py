"""ASGI entry point: HTTP through Django, WebSockets through Channels (alerts.routing)."""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingagent.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from alerts.routing import websocket_urlpatterns  # noqa: E402


def _leave_request_bodies_to_django() -> None:
    """Stop daphne's HTTP server (Twisted) from parsing POSTed form bodies before Django does.

    Twisted parses a multipart POST body to fill a `request.args` daphne never reads, and answers
    a body it cannot parse (no boundary, ...) with a bare `400 Bad Request`: the request never
    reaches Django, so the API cannot answer in its error format. Django parses the body itself.
    daphne (4.2) has no option for this; Twisted's request takes `parsePOSTFormSubmission`.
    This module is what every way of serving the platform loads (daphne's command line in the
    Dockerfile, compose and the launcher; `runserver`) before daphne builds its first request.
    """
    from daphne import http_protocol

    class WebRequest(http_protocol.WebRequest):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    # daphne's HTTPFactory.buildProtocol looks this name up for every connection.
    http_protocol.WebRequest = WebRequest


_leave_request_bodies_to_django()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
