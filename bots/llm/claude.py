"""Claude through the official `anthropic` SDK's Messages API.

Structured output: a JSON schema in `output_config.format` (structured outputs, Claude 4.5 and
later), or for older models a forced tool whose `input_schema` is the decision schema. Newer
models are the default because some (Sonnet 5.5) reject forced tool use, and unknown names are
most likely new ones.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
from django.conf import settings

from bots.llm.base import Completion, LLMDecisionMaker, Turn, parse_retry_after, ssl_context
from bots.llm.exceptions import ProviderError
from bots.prompts import anthropic_json_schema

TOOL_NAME = "submit_decision"
RETRYABLE_STATUS = {408, 409, 429}
# Models from before structured outputs (JSON schema output): they get the forced tool instead.
TOOL_MODE_PREFIXES = (
    "claude-3",
    "claude-opus-4-0",
    "claude-opus-4-1",
    "claude-opus-4-2025",
    "claude-sonnet-4-0",
    "claude-sonnet-4-2025",
)


def uses_tool_mode(model: str) -> bool:
    return model.startswith(TOOL_MODE_PREFIXES)


def _client(base_url: str, api_key: str, http_client: httpx2.Client) -> anthropic.Anthropic:
    # A client per attempt, on the attempt's own HTTP client (see bots.llm.base).
    return anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0, http_client=http_client)


def classify(exc: Exception, timeout: float) -> ProviderError:
    """Map an anthropic SDK exception to retryable or final (529 = overloaded is retried)."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderError(f"timed out after {timeout:g}s", retryable=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError(f"connection error: {exc}", retryable=True)
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body
        message = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            message = f"{error.get('type', '')}: {error.get('message', '')}"
        status = exc.status_code
        return ProviderError(
            f"HTTP {status}: {message or exc.message}",
            retryable=status in RETRYABLE_STATUS or status >= 500,
            retry_after=parse_retry_after(exc.response.headers),
        )
    return ProviderError(f"{type(exc).__name__}: {exc}", retryable=False)


def _text_block(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def _empty_text(block: dict[str, Any]) -> bool:
    # The API rejects text blocks without non-whitespace text.
    return block.get("type") == "text" and not str(block.get("text") or "").strip()


def _merge_consecutive(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One message per turn: a dropped empty answer leaves two user turns in a row, merged here
    (as the API itself would combine them) so the conversation still alternates."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {"role": message["role"], "content": [*merged[-1]["content"], *message["content"]]}
        else:
            merged.append(message)
    return merged


class AnthropicDecisionMaker(LLMDecisionMaker):
    provider = "anthropic"

    def _messages(self, turns: list[Turn]) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for turn in turns:
            answer = turn.answer_to
            tool_use_id = answer.native.get("tool_use_id") if answer is not None and answer.native else None
            if turn.role == "assistant":
                # Replay the assistant's content blocks as they came (a tool_use needs its id),
                # without the empty ones: the API answers a text block with no text, or a turn
                # with no content, with a 400, so a repair after an empty answer could never work.
                blocks = answer.native["content"] if answer is not None and answer.native else _text_block(turn.text)
                blocks = [block for block in blocks if not _empty_text(block)]
                if blocks:
                    messages.append({"role": "assistant", "content": blocks})
            elif tool_use_id:
                # The API requires the turn after a tool_use to carry its tool_result.
                messages.append(
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": tool_use_id, "is_error": True, "content": turn.text}
                        ],
                    }
                )
            else:
                messages.append({"role": "user", "content": _text_block(turn.text)})
        return _merge_consecutive(messages)

    def _http_client(self) -> httpx2.Client:
        return anthropic.DefaultHttpxClient(verify=ssl_context())

    def _send(
        self, *, system: str, turns: list[Turn], symbols: list[str], timeout: float, http_client: httpx2.Client
    ) -> Completion:
        schema = anthropic_json_schema(symbols)
        options: dict[str, Any]
        if uses_tool_mode(self.model):
            options = {
                "tools": [
                    {
                        "name": TOOL_NAME,
                        "description": "Submit this cycle's trading decision (one action per symbol).",
                        "input_schema": schema,
                    }
                ],
                "tool_choice": {"type": "tool", "name": TOOL_NAME},
            }
        else:
            options = {"output_config": {"format": {"type": "json_schema", "schema": schema}}}
        client = _client(str(settings.ANTHROPIC_BASE_URL), str(settings.ANTHROPIC_API_KEY), http_client)
        try:
            message = client.messages.create(
                model=self.model,
                max_tokens=int(settings.LLM_MAX_OUTPUT_TOKENS),
                system=system,
                messages=self._messages(turns),  # type: ignore[arg-type]
                timeout=timeout,
                **options,
            )
        except anthropic.AnthropicError as exc:
            raise classify(exc, timeout) from exc
        usage = message.usage
        # Cache reads/writes are input too (we set no cache breakpoints, so they are normally 0).
        input_tokens = (
            int(usage.input_tokens or 0)
            + int(usage.cache_creation_input_tokens or 0)
            + int(usage.cache_read_input_tokens or 0)
        )
        output_tokens = int(usage.output_tokens or 0)
        texts: list[str] = []
        data: Any = None
        tool_use_id = ""
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use" and block.name == TOOL_NAME:
                data = block.input
                tool_use_id = block.id
        text = json.dumps(data) if data is not None else "".join(texts)
        refusal = ""
        if message.stop_reason == "refusal":
            refusal = "".join(texts).strip() or "stop_reason=refusal"
        return Completion(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            data=data,
            refusal=refusal,
            finish_reason=str(message.stop_reason or ""),
            native={
                "content": [block.model_dump(mode="json", exclude_none=True) for block in message.content],
                "tool_use_id": tool_use_id,
            },
        )
