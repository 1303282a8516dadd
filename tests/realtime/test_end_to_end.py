"""End to end: the real ASGI server, a Celery worker and beat run a bot; real WebSocket clients
(one with the session cookie, one with an API token) receive that cycle's events."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bots.models import Cycle
from tests.factories import BotFactory
from tests.realtime.servers import running_platform
from trading.models import Fill, Order

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WANTED = {"cycle", "order", "fill", "position", "equity", "bot_status"}


async def collect(
    url: str, headers: dict[str, str], origin: str, ready: asyncio.Event, until: set[str]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with connect(url, additional_headers=headers, origin=origin, open_timeout=10) as socket:  # type: ignore[arg-type]
        ready.set()
        while not until <= {e["event"] for e in events}:
            events.append(json.loads(await asyncio.wait_for(socket.recv(), timeout=60)))
    return events


def post_json(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=b"{}", method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_running_bot_streams_its_cycle_to_real_websocket_clients(user):
    bot = BotFactory(owner=user, name="e2e")
    browser = Client()
    browser.force_login(user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    token = str(RefreshToken.for_user(user).access_token)

    with running_platform() as platform:

        async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
            bot_ready, user_ready = asyncio.Event(), asyncio.Event()
            bot_stream = asyncio.create_task(
                collect(f"{platform.ws}/ws/bots/{bot.pk}/", {"Cookie": cookie}, platform.http, bot_ready, WANTED)
            )
            user_stream = asyncio.create_task(
                collect(
                    f"{platform.ws}/ws/stream/", {"Authorization": f"Bearer {token}"}, platform.http, user_ready, WANTED
                )
            )
            await asyncio.wait_for(asyncio.gather(bot_ready.wait(), user_ready.wait()), timeout=20)
            # Start the bot through the API on the running server; beat dispatches within a tick.
            started = await asyncio.to_thread(post_json, f"{platform.http}/api/bots/{bot.pk}/start/", token)
            return await bot_stream, await user_stream, started

        bot_events, user_events, started = asyncio.run(scenario())

    assert started["status"] == "active", started
    cycle = Cycle.objects.get(bot=bot)
    order = Order.objects.get(bot=bot)
    fill = Fill.objects.get(bot=bot)
    for events in (bot_events, user_events):
        by_kind = {e["event"]: e for e in events}
        assert WANTED <= set(by_kind), [e["event"] for e in events]
        assert all(e["bot_id"] == bot.pk for e in events)
        assert by_kind["bot_status"]["data"]["status"] == "active"
        assert by_kind["cycle"]["data"]["id"] == cycle.pk and by_kind["cycle"]["data"]["status"] == "completed"
        assert by_kind["cycle"]["data"]["actions"][0]["action"] == "open_long"
        assert by_kind["order"]["data"]["client_order_id"] == order.client_order_id
        assert by_kind["fill"]["data"]["id"] == fill.pk and Decimal(by_kind["fill"]["data"]["price"]) == fill.price
        assert by_kind["position"]["data"]["status"] == "open"


async def close_code(url: str, headers: dict[str, str], origin: str) -> int | None:
    """The close code a real client gets from the server right after connecting."""
    async with connect(url, additional_headers=headers, origin=origin, open_timeout=10) as socket:  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(socket.recv(), timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


def test_refused_streams_reach_a_real_client_as_close_codes(user, other_user):
    # What the dashboard's stream.js acts on: 4401 -> log in again, 4404 -> stop reconnecting.
    theirs = BotFactory(owner=other_user, name="theirs")
    token = str(RefreshToken.for_user(user).access_token)

    with running_platform(beat=False) as platform:

        async def scenario() -> tuple[int | None, int | None]:
            anonymous = await close_code(f"{platform.ws}/ws/stream/", {}, platform.http)
            not_mine = await close_code(
                f"{platform.ws}/ws/bots/{theirs.pk}/", {"Authorization": f"Bearer {token}"}, platform.http
            )
            return anonymous, not_mine

        assert asyncio.run(scenario()) == (4401, 4404)
