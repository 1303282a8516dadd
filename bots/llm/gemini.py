"""Gemini through the official `google-genai` SDK (Gemini Developer API, generateContent).

Structured output: `response_mime_type=application/json` with `response_json_schema`. The SDK's
own retries are off (no `retry_options`): the shared policy in `bots.llm.base` applies, and it
honours the wait the API asks for (`Retry-After`, or the RetryInfo detail of a 429 body).
"""

from __future__ import annotations

import re
from typing import Any

import httpx2
from django.conf import settings
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from bots.llm.base import Completion, LLMDecisionMaker, Turn, parse_retry_after
from bots.llm.exceptions import ProviderError
from bots.prompts import gemini_json_schema

API_VERSION = "v1beta"
RETRYABLE_STATUS = {408, 429}
# Finish reasons that mean the answer was blocked rather than written.
BLOCKED_FINISH_REASONS = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _client(base_url: str, api_key: str, http_client: httpx2.Client) -> genai.Client:
    # A client per attempt, on the attempt's own HTTP client (see bots.llm.base).
    return genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(base_url=base_url, api_version=API_VERSION, httpx_client=http_client),
    )


def _retry_info_delay(details: Any) -> float | None:
    """The `retryDelay` of a google.rpc.RetryInfo detail in an error body ("17s"), if any."""
    error = details.get("error", details) if isinstance(details, dict) else None
    for detail in (error or {}).get("details", []) or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def classify(exc: Exception, timeout: float) -> ProviderError:
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(f"timed out after {timeout:g}s", retryable=True)
    if isinstance(exc, httpx2.TransportError):
        return ProviderError(f"connection error: {exc}", retryable=True)
    if isinstance(exc, genai_errors.APIError):
        status = int(exc.code or 0)
        headers = getattr(getattr(exc, "response", None), "headers", None)
        retry_after = parse_retry_after(headers)
        if retry_after is None:
            retry_after = _retry_info_delay(exc.details)
        return ProviderError(
            f"HTTP {status}: {exc.status or ''} {exc.message or ''}".strip(),
            retryable=status in RETRYABLE_STATUS or status >= 500,
            retry_after=retry_after,
        )
    return ProviderError(f"{type(exc).__name__}: {exc}", retryable=False)


def _contents(turns: list[Turn]) -> list[types.Content]:
    """The conversation as Gemini contents, without empty turns.

    The API answers a part with empty text with a 400 ("empty text parameter"), so an empty answer
    is not replayed; the user turns around it are merged into one turn, keeping the roles
    alternating.
    """
    contents: list[types.Content] = []
    for turn in turns:
        if not turn.text.strip():
            continue
        role = "model" if turn.role == "assistant" else "user"
        if contents and contents[-1].role == role:
            contents[-1].parts = [*(contents[-1].parts or []), types.Part(text=turn.text)]
        else:
            contents.append(types.Content(role=role, parts=[types.Part(text=turn.text)]))
    return contents


class GeminiDecisionMaker(LLMDecisionMaker):
    provider = "gemini"

    def _send(
        self, *, system: str, turns: list[Turn], symbols: list[str], timeout: float, http_client: httpx2.Client
    ) -> Completion:
        contents = _contents(turns)
        config = types.GenerateContentConfig(
            system_instruction=system,
            response_mime_type="application/json",
            response_json_schema=gemini_json_schema(symbols),
            max_output_tokens=int(settings.LLM_MAX_OUTPUT_TOKENS),
            # Milliseconds; at least 1 ms so a nearly spent wait budget still means "tiny".
            http_options=types.HttpOptions(timeout=max(1, int(timeout * 1000))),
        )
        client = _client(str(settings.GEMINI_BASE_URL), str(settings.GEMINI_API_KEY), http_client)
        try:
            response = client.models.generate_content(model=self.model, contents=contents, config=config)
        except (genai_errors.APIError, httpx2.HTTPError) as exc:
            raise classify(exc, timeout) from exc
        usage = response.usage_metadata
        input_tokens = int(usage.prompt_token_count or 0) if usage else 0
        # Thinking tokens are billed as output.
        output_tokens = int((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0
        feedback = response.prompt_feedback
        if not response.candidates:
            reason = feedback.block_reason if feedback and feedback.block_reason else None
            return Completion(
                text="",
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                refusal=f"prompt blocked: {reason}" if reason else "",
                finish_reason="no candidates",
            )
        candidate = response.candidates[0]
        finish = str(getattr(candidate.finish_reason, "value", candidate.finish_reason) or "")
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        # Thought summaries are not the answer.
        text = "".join(part.text for part in parts if part.text and not part.thought)
        refusal = f"answer blocked: {finish}" if finish in BLOCKED_FINISH_REASONS else ""
        return Completion(
            text=text, input_tokens=input_tokens, output_tokens=output_tokens, refusal=refusal, finish_reason=finish
        )
