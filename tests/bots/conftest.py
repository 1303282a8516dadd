"""Fixtures of the bots tests: an LLM endpoint that is down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.clock import FakeClock
from tests.protocol_server import ProtocolHandler, ProtocolServer


class _DownHandler(ProtocolHandler):
    def do_POST(self) -> None:
        with self.service.lock:
            self.service.hits += 1
        self.send_json(503, {"error": {"message": "service unavailable", "type": "server_error"}})


class DownLLM(ProtocolServer):
    """An OpenAI-compatible endpoint that is down: every request gets a 503 and is counted."""

    handler = _DownHandler

    def __init__(self) -> None:
        super().__init__()
        self.hits = 0


@pytest.fixture
def down_llm(settings: Any, llm_fake_clock: FakeClock) -> Iterator[DownLLM]:
    """The openai_compatible provider pointed at a server that is down (retried on a fake clock)."""
    with DownLLM() as server:
        settings.OPENAI_COMPATIBLE_BASE_URL = f"{server.url}/v1"
        settings.OPENAI_COMPATIBLE_API_KEY = "local"
        yield server
