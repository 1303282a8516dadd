"""WebSocket streams against the real ASGI application and the Redis channel layer."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from alerts import realtime
from alerts.services import alert_raise
from bots.cycle import run_cycle
from bots.models import Cycle
from tests.factories import SLOT, BotFactory
from tests.realtime.conftest import ORIGIN, communicator, session_headers, token_headers

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


def run(coroutine_function: Any) -> Any:
    return async_to_sync(coroutine_function)()


def connect_result(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, Any]:
    """(True, subprotocol) for a stream that stays open; (False, close code) for a refused one."""

    async def scenario() -> tuple[bool, Any]:
        ws = communicator(path, headers)
        connected, code = await ws.connect(timeout=TIMEOUT)
        if connected and not await ws.receive_nothing(timeout=0.2):
            closing = await ws.receive_output(timeout=TIMEOUT)  # accepted, then closed at once
            assert closing["type"] == "websocket.close", closing
            connected, code = False, closing.get("code")
        await ws.disconnect()
        return connected, code

    return run(scenario)


def handshake(path: str, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """The first messages the application answers a handshake with."""

    async def scenario() -> list[dict[str, Any]]:
        ws = communicator(path, headers)
        await ws.send_input({"type": "websocket.connect"})
        messages = [await ws.receive_output(timeout=TIMEOUT)]
        if messages[0]["type"] == "websocket.accept" and not await ws.receive_nothing(timeout=0.2):
            messages.append(await ws.receive_output(timeout=TIMEOUT))
        await ws.disconnect()
        return messages

    return run(scenario)


def test_anonymous_connections_are_refused(user):
    bot = BotFactory(owner=user)

    assert connect_result("/ws/stream/", [ORIGIN]) == (False, 4401)
    assert connect_result(f"/ws/bots/{bot.pk}/", [ORIGIN]) == (False, 4401)
    bad_token = [ORIGIN, (b"authorization", b"Bearer not.a.token")]
    assert connect_result("/ws/stream/", bad_token) == (False, 4401)


@pytest.mark.parametrize("path", ["/ws/zzz/", "/ws/stream", "/ws/bots/abc/", "/"])
def test_an_unknown_path_is_refused_not_an_error(user, path):
    assert connect_result(path, session_headers(user)) == (False, 4404)
    assert connect_result(path, [ORIGIN]) == (False, 4404)


@pytest.mark.parametrize("auth", [session_headers, token_headers])
def test_a_user_joins_their_streams_never_another_users_bot(user, other_user, auth):
    mine = BotFactory(owner=user)
    theirs = BotFactory(owner=other_user, name="theirs")
    headers = auth(user)

    assert connect_result("/ws/stream/", headers)[0] is True
    assert connect_result(f"/ws/bots/{mine.pk}/", headers)[0] is True
    assert connect_result(f"/ws/bots/{theirs.pk}/", headers) == (False, 4404)
    assert connect_result("/ws/bots/999999999/", headers) == (False, 4404)
    assert connect_result(f"/ws/bots/{2**70}/", headers) == (False, 4404)


def test_refusals_are_close_codes_a_browser_receives(user, other_user):
    # A close before the accept is a failed handshake for the browser (daphne answers HTTP 403):
    # the code would be lost, and the page could not tell "log in again" or "not yours" from a
    # network error. So the stream is accepted, then closed with the code.
    theirs = BotFactory(owner=other_user, name="theirs")

    assert [m["type"] for m in handshake("/ws/stream/", [ORIGIN])] == ["websocket.accept", "websocket.close"]
    assert handshake("/ws/stream/", [ORIGIN])[1]["code"] == 4401
    refused = handshake(f"/ws/bots/{theirs.pk}/", session_headers(user))
    assert [m["type"] for m in refused] == ["websocket.accept", "websocket.close"] and refused[1]["code"] == 4404


def test_a_foreign_origin_is_refused(user):
    headers = [(b"origin", b"http://evil.example"), *session_headers(user)[1:]]

    assert connect_result("/ws/stream/", headers)[0] is False


def test_events_reach_the_bot_and_owner_streams_after_commit_only(user, other_user):
    bot = BotFactory(owner=user)
    sibling = BotFactory(owner=user, name="sibling")
    mine, theirs = session_headers(user), session_headers(other_user)

    async def scenario() -> None:
        user_ws = communicator("/ws/stream/", mine)
        bot_ws = communicator(f"/ws/bots/{bot.pk}/", mine)
        sibling_ws = communicator(f"/ws/bots/{sibling.pk}/", mine)
        stranger_ws = communicator("/ws/stream/", theirs)
        for ws in (user_ws, bot_ws, sibling_ws, stranger_ws):
            assert (await ws.connect(timeout=TIMEOUT))[0]

        @sync_to_async
        def rolled_back() -> None:
            with pytest.raises(RuntimeError), transaction.atomic():
                alert_raise(owner_id=user.pk, bot_id=bot.pk, kind="trade", message="never happened")
                raise RuntimeError("rollback")

        await rolled_back()
        assert await user_ws.receive_nothing(timeout=0.5)

        @sync_to_async
        def committed() -> int:
            with transaction.atomic():
                alert = alert_raise(
                    owner_id=user.pk, bot_id=bot.pk, kind="risk", severity="warning", message="drawdown 9%"
                )
                realtime.publish_bot_status(bot)
            return alert.pk

        alert_id = await committed()
        for ws in (user_ws, bot_ws):
            first = await ws.receive_json_from(timeout=TIMEOUT)
            second = await ws.receive_json_from(timeout=TIMEOUT)
            assert first == {
                "event": "alert",
                "bot_id": bot.pk,
                "data": {
                    "id": alert_id,
                    "kind": "risk",
                    "severity": "warning",
                    "message": "drawdown 9%",
                    "bot_id": bot.pk,
                    "created_at": first["data"]["created_at"],
                },
            }
            assert second["event"] == "bot_status" and second["data"]["status"] == "inactive"
        assert await sibling_ws.receive_nothing(timeout=0.3)
        assert await stranger_ws.receive_nothing(timeout=0.3)
        for ws in (user_ws, bot_ws, sibling_ws, stranger_ws):
            await ws.disconnect()

    run(scenario)


def test_ping_pong(user):
    async def scenario() -> None:
        ws = communicator("/ws/stream/", token_headers(user))
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=TIMEOUT) == {"event": "pong"}
        await ws.send_to(text_data="not json")  # ignored, the stream stays up
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=TIMEOUT) == {"event": "pong"}
        await ws.disconnect()

    run(scenario)


def test_a_message_nested_too_deeply_to_parse_is_ignored_too(user):
    async def scenario() -> None:
        ws = communicator("/ws/stream/", token_headers(user))
        assert (await ws.connect(timeout=TIMEOUT))[0]
        # The JSON decoder recurses per level: this raised RecursionError, not a ValueError.
        await ws.send_to(text_data="[" * 100_000)
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=TIMEOUT) == {"event": "pong"}
        await ws.disconnect()

    run(scenario)


def cycle_in_thread(*, bot_id: int) -> None:
    try:
        run_cycle(bot_id=bot_id, slot=SLOT)
    finally:
        connections.close_all()  # this thread's connection, so the test database can be dropped


def test_a_cycle_streams_its_analysis_order_fill_position_and_equity(user):
    bot = BotFactory(owner=user, start=True)
    headers = session_headers(user)

    async def scenario() -> list[dict[str, Any]]:
        ws = communicator(f"/ws/bots/{bot.pk}/", headers)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        # The cycle runs in a worker thread of its own, as in a Celery worker.
        worker = threading.Thread(target=cycle_in_thread, kwargs={"bot_id": bot.pk})
        worker.start()
        events: list[dict[str, Any]] = []
        while not events or events[-1]["event"] != "cycle":
            events.append(await ws.receive_json_from(timeout=30))
        await sync_to_async(worker.join)()
        await ws.disconnect()
        return events

    events = run(scenario)

    kinds = [e["event"] for e in events]
    assert {"order", "fill", "position", "equity", "cycle"} <= set(kinds), kinds
    by_kind = {e["event"]: e["data"] for e in events}
    assert all(e["bot_id"] == bot.pk for e in events)
    assert by_kind["fill"]["side"] == "buy" and by_kind["fill"]["symbol"] == "BTC/USD"
    assert by_kind["position"]["status"] == "open" and by_kind["position"]["side"] == "long"
    assert by_kind["equity"]["equity"] is not None
    cycle = by_kind["cycle"]
    assert cycle["status"] == "completed" and cycle["market_summary"].startswith("buy and hold")
    assert cycle["decision_error"] == "" and cycle["error"] == ""
    assert cycle["actions"][0] == {
        "symbol": "BTC/USD",
        "action": "open_long",
        "confidence": 0.5,
        "reasoning": cycle["actions"][0]["reasoning"],
    }
    assert cycle["actions"][0]["reasoning"]


def test_a_cycle_event_carries_the_rejected_output_like_the_api(user):
    # The dashboard renders a streamed cycle with the same code as one from the API's list:
    # "Output rejected: ..." comes from decision_error, which the event must carry too.
    bot = BotFactory(owner=user)
    cycle = Cycle.objects.create(
        bot=bot,
        slot=timezone.now(),
        started_at=timezone.now(),
        status="completed",
        decision={"market_summary": "holding: the output was rejected", "actions": []},
        decision_error="invalid answer after one repair: confidence must be between 0 and 1",
    )

    payload = realtime.cycle_payload(cycle)

    assert payload["decision_error"] == "invalid answer after one repair: confidence must be between 0 and 1"
    listed = APIClient()
    listed.force_authenticate(user)
    [row] = listed.get("/api/cycles/", {"bot": bot.pk}).json()["results"]
    assert payload["decision_error"] == row["decision_error"]


def logged_in_browser(user: Any) -> tuple[Client, list[tuple[bytes, bytes]]]:
    client = Client()
    client.force_login(user)
    return client, [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def closed_with(ws: Any) -> Any:
    message = await ws.receive_output(timeout=TIMEOUT)
    assert message["type"] == "websocket.close", message
    return message.get("code")


def test_logging_out_closes_the_streams_of_that_session_only(user):
    bot = BotFactory(owner=user)
    browser, headers = logged_in_browser(user)
    _, other_browser = logged_in_browser(user)

    async def scenario() -> None:
        user_ws = communicator("/ws/stream/", headers)
        bot_ws = communicator(f"/ws/bots/{bot.pk}/", headers)
        other_ws = communicator("/ws/stream/", other_browser)
        for ws in (user_ws, bot_ws, other_ws):
            assert (await ws.connect(timeout=TIMEOUT))[0]

        response = await sync_to_async(browser.post)("/logout/")
        assert response.status_code == 302

        assert await closed_with(user_ws) == 4401  # the page goes to the login form
        assert await closed_with(bot_ws) == 4401
        # The same user's other browser is still logged in and keeps its stream.
        await other_ws.send_json_to({"type": "ping"})
        assert await other_ws.receive_json_from(timeout=TIMEOUT) == {"event": "pong"}
        for ws in (user_ws, bot_ws, other_ws):
            await ws.disconnect()

    run(scenario)


def test_deactivating_or_deleting_a_user_closes_all_their_streams(user, other_user):
    _, headers = logged_in_browser(user)
    _, bystander = logged_in_browser(other_user)

    async def scenario() -> None:
        session_ws = communicator("/ws/stream/", headers)
        token_ws = communicator("/ws/stream/", token_headers(user))
        bystander_ws = communicator("/ws/stream/", bystander)
        for ws in (session_ws, token_ws, bystander_ws):
            assert (await ws.connect(timeout=TIMEOUT))[0]

        user.is_active = False
        await sync_to_async(user.save)()

        assert await closed_with(session_ws) == 4401
        assert await closed_with(token_ws) == 4401
        assert await bystander_ws.receive_nothing(timeout=0.3)

        await sync_to_async(other_user.delete)()
        assert await closed_with(bystander_ws) == 4401
        for ws in (session_ws, token_ws, bystander_ws):
            await ws.disconnect()

    run(scenario)


def test_a_token_stream_closes_when_its_token_expires(user):
    token = RefreshToken.for_user(user).access_token
    token.set_exp(lifetime=timedelta(seconds=1))
    headers = [ORIGIN, (b"authorization", f"Bearer {token}".encode())]

    async def scenario() -> None:
        ws = communicator("/ws/stream/", headers)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=TIMEOUT) == {"event": "pong"}
        assert await closed_with(ws) == 4401  # the program reconnects with a fresh token
        await ws.disconnect()

    run(scenario)
