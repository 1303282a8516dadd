"""A local OpenAI-compatible model server for the benches: answers after a fixed latency.

    .venv/bin/python -m bench.llm_server --port 8790 --latency 2

It speaks the Chat Completions wire format (`POST /v1/chat/completions`, `GET /v1/models`) as
vLLM or Ollama do, so the platform's `openai_compatible` provider talks to it through the
official `openai` SDK exactly as it would to a real server. Each answer is a valid decision for
the symbols the request names (the `enum` of the strict JSON schema in `response_format`, or the
`--- SYMBOL ---` headings of the prompt when no schema is sent): `hold` for every symbol, with a
reasoning text of realistic length, and `usage` counting roughly 4 characters per token.

It is asyncio-based (aiohttp, which the pinned ccxt already requires): a waiting request costs a
coroutine, not a thread, so thousands of concurrent model waits are cheap and the latency stays
what was asked for. `GET /bench/stats` returns the requests served and the most seen at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from typing import Any

from aiohttp import web

HEADING = re.compile(r"^--- (\S+) ---$", re.MULTILINE)
REASONING = (
    "Trend and momentum are mixed on this timeframe: price sits between the short and long EMAs, "
    "RSI is near its midline and MACD has no clear direction. No edge worth the fees; holding."
)


def symbols_of(body: dict[str, Any]) -> list[str]:
    """The symbols a decision request is about: the schema's enum, else the prompt's headings."""
    try:
        schema = body["response_format"]["json_schema"]["schema"]
        return list(schema["properties"]["actions"]["items"]["properties"]["symbol"]["enum"])
    except (KeyError, TypeError):
        pass
    text = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [] if isinstance(m, dict))
    return list(dict.fromkeys(HEADING.findall(text)))


def decision_for(symbols: list[str]) -> dict[str, Any]:
    return {
        "market_summary": "Range-bound market without a confirmed trend; waiting for a cleaner setup.",
        "actions": [
            {
                "symbol": symbol,
                "reasoning": REASONING,
                "action": "hold",
                "size_pct": 0,
                "leverage": 1,
                "stop_loss": None,
                "take_profit": None,
                "confidence": 0.55,
                "invalidation": "a close beyond the recent range with rising volume",
            }
            for symbol in symbols
        ],
    }


class Server:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.served = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = time.time()

    async def chat(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "invalid_request_error", "the body is not valid JSON")
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return _error(400, "invalid_request_error", "model and messages are required")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        content = json.dumps(decision_for(symbols_of(body)))
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body["messages"] if isinstance(m, dict))
        self.served += 1
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "system_fingerprint": "fp_bench",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_chars // 4,
                    "completion_tokens": len(content) // 4,
                    "total_tokens": prompt_chars // 4 + len(content) // 4,
                },
            },
            headers={"x-request-id": f"req_{uuid.uuid4().hex[:16]}"},
        )

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "bench-model", "object": "model", "owned_by": "bench"}]}
        )

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"served": self.served, "in_flight": self.in_flight, "max_in_flight": self.max_in_flight}
        )


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": None, "code": None}}, status=status)


def make_app(latency: float) -> web.Application:
    server = Server(latency)
    application = web.Application(client_max_size=8 * 1024 * 1024)
    application.router.add_post("/v1/chat/completions", server.chat)
    application.router.add_get("/v1/models", server.models)
    application.router.add_get("/bench/stats", server.stats)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds before each answer (default 2)")
    args = parser.parse_args()
    if args.latency < 0:
        parser.error("--latency must be >= 0")
    # A deep accept backlog: a burst of cycles opens many connections at once.
    web.run_app(make_app(args.latency), host=args.host, port=args.port, backlog=4096, print=None, access_log=None)


if __name__ == "__main__":
    main()
