"""Helpers of the WebSocket tests: handshake headers for a session or a token, a communicator."""

from __future__ import annotations

from typing import Any

from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

ORIGIN = (b"origin", b"http://localhost")


def session_headers(user: Any) -> list[tuple[bytes, bytes]]:
    """A logged-in browser: the session cookie Django's login sets."""
    client = Client()
    client.force_login(user)
    return [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


def token_headers(user: Any) -> list[tuple[bytes, bytes]]:
    """A program: an API access token in the Authorization header."""
    # An access token alone: a refresh token is recorded in the database (the logout blacklist),
    # which the async scenarios calling this may not do.
    return [ORIGIN, (b"authorization", f"Bearer {AccessToken.for_user(user)}".encode())]


def communicator(path: str, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    from tradingagent.asgi import application

    return WebsocketCommunicator(application, path, headers=headers)
