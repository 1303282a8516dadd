"""WebSocket consumers: the user's stream (every bot of theirs) and one bot's stream.

Authentication: the browser's session cookie (Channels' AuthMiddlewareStack fills scope["user"]),
or for programs an API access token in an `Authorization: Bearer <token>` header of the
handshake. Anonymous handshakes are refused with close code 4401; a bot stream of a bot that is
not the user's (or does not exist) with 4404, so a stream never reveals whether a bot exists.
A refused stream is accepted, then closed at once with its code: closed before accepting, it would
reach the browser as a failed handshake (daphne answers HTTP 403), without the code that tells the
page to stop reconnecting (4404) or to log in again (4401).

Authentication is not only checked at the handshake: a stream closes with 4401 when the login
session it was opened with logs out, when its user is deactivated or deleted, and, for a token,
when the token expires (a program reconnects with a fresh one). `alerts.realtime` sends the
`auth.revoked` message to the groups `session.<digest>` and `account.<id>` that every stream joins.

The consumers only relay: `alerts.realtime` publishes `stream.event` messages to the groups
`user.<id>` and `bot.<id>` after the data committed, and each message is forwarded as JSON
`{"event": ..., "bot_id": ..., "data": {...}}`. A client may send `{"type": "ping"}` and gets
`{"event": "pong"}` (keep-alive through proxies that drop idle connections).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from alerts.realtime import account_group, bot_group, session_group, user_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def _bearer_token(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def user_for_token(raw_token: str) -> tuple[AbstractBaseUser, float] | None:
    """(the active user an access token belongs to, its expiry as a Unix time), or None (invalid,
    expired, unknown or inactive user, or a token from before the user's last password change):
    the API's own check (JWTAuthentication.get_user)."""
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.tokens import AccessToken

    try:
        token = AccessToken(raw_token)  # type: ignore[arg-type]
        user = JWTAuthentication().get_user(token)
    except (TokenError, AuthenticationFailed):
        return None
    return user, float(token["exp"])


def user_owns_bot(*, user_id: int, bot_id: int) -> bool:
    from bots.models import Bot

    return Bot.objects.filter(pk=bot_id, owner_id=user_id).exists()


class StreamConsumer(AsyncJsonWebsocketConsumer):
    """Base: authenticate, join the groups `groups_for` names, relay `stream.event` messages."""

    joined: list[str]
    expiry: asyncio.Task[None] | None = None  # closes a token's stream when the token expires

    async def connect(self) -> None:
        self.joined = []
        user, auth_groups, expires_in = await self._authenticate()
        if user is None:
            await self._refuse(CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        groups = await self.groups_for(user)
        if groups is None:
            await self._refuse(CLOSE_NOT_FOUND)
            return
        for group in [*auth_groups, *groups]:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        if expires_in is not None:
            self.expiry = asyncio.create_task(self._close_after(expires_in))

    async def _close_after(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0))
        logger.info("stream of user %s closed: its token expired", self.user.pk)
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def auth_revoked(self, message: dict[str, Any]) -> None:
        """Handler of `auth.revoked`: the session logged out or the account ended."""
        logger.info("stream of user %s closed: its authentication ended", self.user.pk)
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _refuse(self, code: int) -> None:
        # Accepted first, so that the client gets the close code (see the module docstring).
        await self.accept()
        await self.close(code=code)

    async def _authenticate(self) -> tuple[AbstractBaseUser | None, list[str], float | None]:
        """(user or None, the groups that end with this authentication, seconds until it expires)."""
        user = self.scope.get("user")
        if user is not None and not isinstance(user, AnonymousUser) and user.is_authenticated:
            session_key = self.scope["session"].session_key
            return user, [account_group(user.pk), session_group(session_key)], None
        raw_token = _bearer_token(self.scope)
        if raw_token is None:
            return None, [], None
        found = await sync_to_async(user_for_token)(raw_token)
        if found is None:
            return None, [], None
        token_user, expires_at = found
        return token_user, [account_group(token_user.pk)], expires_at - time.time()

    async def groups_for(self, user: AbstractBaseUser) -> list[str] | None:
        raise NotImplementedError

    async def disconnect(self, code: int) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # Clients only ever send pings; anything unparsable is ignored instead of killing the stream,
        # including a message nested too deeply for the decoder's recursion (a RecursionError).
        if text_data is None:
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"event": "pong"})

    async def stream_event(self, message: dict[str, Any]) -> None:
        """Handler of `stream.event` group messages (alerts.realtime.MESSAGE_TYPE)."""
        await self.send_json(message["payload"])


class UserStreamConsumer(StreamConsumer):
    """`/ws/stream/`: every event of every bot of the connected user, and their alerts."""

    async def groups_for(self, user: AbstractBaseUser) -> list[str] | None:
        return [user_group(user.pk)]


class BotStreamConsumer(StreamConsumer):
    """`/ws/bots/<bot_id>/`: the events of one bot, for its owner only."""

    async def groups_for(self, user: AbstractBaseUser) -> list[str] | None:
        bot_id = int(self.scope["url_route"]["kwargs"]["bot_id"])
        if not await sync_to_async(user_owns_bot)(user_id=user.pk, bot_id=bot_id):
            logger.info("user %s refused the stream of bot %s", user.pk, bot_id)
            return None
        return [bot_group(bot_id)]


class UnknownPathConsumer(AsyncJsonWebsocketConsumer):
    """Any other WebSocket path: refused with 4404, as a stream of someone else's bot is. Without
    it the router raises "No route found", which daphne answers with a 500 and a logged traceback."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_NOT_FOUND)
