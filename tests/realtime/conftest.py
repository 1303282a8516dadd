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


class Communicator(WebsocketCommunicator):
    """Channels' test client, with a shorter wait for the consumer to end after a disconnect.

    After `websocket.disconnect` the consumer stops, cancelling its channel layer receive; the
    first such cancellation of a test often takes channels_redis a second to notice, blocked in
    BZPOPMIN, and `WebsocketCommunicator.disconnect` waits that second before it cancels the
    consumer itself (as daphne does after its application_close_timeout). No test asserts on
    that second; each used to pay for it.
    """

    async def disconnect(self, code: int = 1000, timeout: float = 0.2) -> None:
        await super().disconnect(code=code, timeout=timeout)


def communicator(path: str, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    from tradingagent.asgi import application

    return Communicator(application, path, headers=headers)
