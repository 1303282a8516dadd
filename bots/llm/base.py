"""The LLM decision maker: prompt, shared rate limit, retries, parsing, one repair, accounting.

Provider modules subclass `LLMDecisionMaker` and implement one HTTP attempt (`_send`) with the
official SDK, configured with `max_retries=0`: the retry policy lives here, once for all
providers, because the SDKs cannot do all of it. openai/anthropic honour `Retry-After` and add
jitter but cannot cap the total time a cycle waits across attempts; google-genai's
`HttpRetryOptions` backs off with jitter but ignores `Retry-After`. Here every attempt takes a
slot of the shared per-model rate limit, gets `min(LLM_TIMEOUT_SECONDS, time left)`, and 429/5xx/
timeouts are retried (at most `LLM_MAX_RETRIES` times) after `Retry-After` or an exponential
backoff with jitter, never past `LLM_MAX_WAIT_SECONDS` from the first request.

An attempt's time is a wall-clock deadline. The SDKs' `timeout` is httpx's per-phase timeout
(connect, each read, each write), so a server sending its answer a few bytes at a time would keep
one attempt open indefinitely; httpx has no total timeout. So each attempt runs in a worker thread
on an HTTP client of its own, and is abandoned at its deadline: it is then a timeout like the
SDK's own (retried within the cap, then recorded), and its client is closed, which drops the
connection so that the worker ends at its next network wake-up instead of reading on. (No
connection outlives its attempt: between cycles minutes apart, a kept-alive one would have
expired anyway.)

`decide()` never raises: a failed API, an unparseable or invalid answer (after one repair
request carrying the validation error), a refusal, even a bug here, end as a hold with `error`
set; no slot in the shared rate limit or a spent daily budget end as a hold with
`skipped_reason` set.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx2
from django.conf import settings

from bots.decisions import (
    Decision,
    DecisionContext,
    DecisionInvalid,
    DecisionOutcome,
    LLMCallRecord,
    validate_decision,
)
from bots.llm.exceptions import LLMCallFailed, ProviderError
from bots.llm.pricing import cost_of
from bots.llm.ratelimit import RateLimiter, default_limiter
from bots.prompts import PROMPT_VERSION, build_prompt, full_prompt
from bots.providers import REGISTRY

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 20.0
# Below this, an attempt could not get an answer anyway: give up instead.
MIN_ATTEMPT_SECONDS = 0.05
MAX_ERROR_CHARS = 2000


@dataclass
class Completion:
    """One successful API answer, reduced to what the decision maker needs."""

    text: str  # the model's answer as text (JSON, or whatever it wrote)
    input_tokens: int = 0
    output_tokens: int = 0
    data: Any = None  # the structured answer when the API returns it parsed (tool input)
    refusal: str = ""  # set when the model or the provider's filters declined to answer
    finish_reason: str = ""
    native: Any = None  # the provider's own assistant message, replayed in a repair request


@dataclass
class Turn:
    role: str  # "user" / "assistant"
    text: str
    answer_to: Completion | None = None  # for a repair: the rejected answer this turn replies to


class ModelRefused(Exception):
    """The model (or the provider's safety filter) refused to answer."""


class _Skipped(Exception):
    """No request could be made (no rate limit slot in time)."""


@dataclass
class _Wait:
    """The cycle's budget of time waiting for the model, started with the first request."""

    clock: Callable[[], float]
    deadline: float | None = None
    calls: list[LLMCallRecord] = field(default_factory=list)

    def remaining(self) -> float:
        if self.deadline is None:
            return float(settings.LLM_MAX_WAIT_SECONDS)
        return self.deadline - self.clock()


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The TLS settings of every attempt's HTTP client: built once (loading the CA certificates
    takes milliseconds), shared (an SSLContext is safe to use from several threads)."""
    return httpx2.create_ssl_context()


def _truncate(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _floats_to_decimal(value: Any) -> Any:
    # Numbers an SDK already parsed as floats: their shortest repr is what the model wrote.
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _floats_to_decimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats_to_decimal(v) for v in value]
    return value


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def parse_json_text(text: str) -> Any:
    """Parse a model's JSON answer; tolerates code fences and prose around one object.

    Numbers become Decimal (money must not go through float). Raises DecisionInvalid.
    """
    candidates = [text]
    fenced = _FENCE.match(text)
    if fenced:
        candidates.append(fenced.group(1))
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    error: json.JSONDecodeError | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            error = error or exc
        except RecursionError:
            raise DecisionInvalid("the answer is nested too deeply to be a decision") from None
    raise DecisionInvalid(f"the answer is not valid JSON ({error})")


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt` (1-based).

    `Retry-After` is honoured as a floor, plus up to 10% jitter so that workers told the same
    time do not return together; otherwise exponential backoff with "equal jitter".
    """
    if retry_after is not None and retry_after > 0:
        return retry_after + random.uniform(0, min(1.0, retry_after * 0.1))
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), or None."""
    if headers is None:
        return None
    from email.utils import parsedate_to_datetime

    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class LLMDecisionMaker:
    """Base of every LLM provider's decision maker (see the module docstring)."""

    provider: str = ""

    def __init__(
        self,
        *,
        model: str,
        bot_id: int | None = None,
        llm_daily_budget: Decimal | None = None,
        owner_id: int | None = None,
        user_daily_budget: Decimal | None = None,
        purpose: str = "decide",
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.bot_id = bot_id
        self.llm_daily_budget = llm_daily_budget
        # The bot's owner: the rate limit's fair share is per user, and so is the operator's
        # daily LLM budget per user (None when it does not apply: bots.rules.user_llm_daily_budget).
        self.owner_id = owner_id
        self.user_daily_budget = user_daily_budget
        self.purpose = purpose  # "decide", or "check" for llm_check
        self._limiter = limiter
        self._sleep = sleep
        self._clock = clock

    # --- provider hooks ------------------------------------------------------------------------

    def _send(
        self, *, system: str, turns: list[Turn], symbols: list[str], timeout: float, http_client: httpx2.Client
    ) -> Completion:
        """One HTTP attempt through `http_client`. Raises ProviderError (classified) for any API or
        transport failure."""
        raise NotImplementedError

    def _http_client(self) -> httpx2.Client:
        """A new HTTP client for one attempt (the provider's SDK defaults)."""
        return httpx2.Client(verify=ssl_context(), follow_redirects=True)

    def _send_within(self, *, system: str, turns: list[Turn], symbols: list[str], timeout: float) -> Completion:
        """`_send`, given `timeout` seconds of wall-clock time in all (see the module docstring)."""
        http_client = self._http_client()
        future: Future[Completion] = Future()
        context = contextvars.copy_context()

        def attempt() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                completion = context.run(
                    self._send, system=system, turns=turns, symbols=symbols, timeout=timeout, http_client=http_client
                )
            except BaseException as exc:  # handed to the waiting thread (or dropped if it gave up)
                future.set_exception(exc)
            else:
                future.set_result(completion)

        worker = threading.Thread(target=attempt, name=f"llm-{self.provider}-attempt", daemon=True)
        try:
            worker.start()
            if not wait_for([future], timeout=timeout).done:
                future.cancel()  # a no-op once running; stops a worker that has not started yet
                raise ProviderError(f"timed out after {timeout:g}s", retryable=True)
            return future.result()
        finally:
            # Done, failed or abandoned: this attempt's connection is not reused. Closing it under
            # an abandoned worker makes its next read fail, so it stops instead of reading on.
            http_client.close()

    # --- the flow ------------------------------------------------------------------------------

    def decide(self, ctx: DecisionContext) -> DecisionOutcome:
        started = self._clock()
        system, user = build_prompt(ctx)
        outcome = DecisionOutcome(
            decision=Decision.hold_all(ctx.symbols, "no decision"),
            prompt=full_prompt(system, user),
            prompt_version=PROMPT_VERSION,
        )
        wait = _Wait(clock=self._clock)
        try:
            self._decide(ctx, system, user, outcome, wait)
        except Exception as exc:  # a bug here must hold the bot, not crash its cycle
            logger.exception("LLM decision maker %s/%s failed unexpectedly", self.provider, self.model)
            outcome.error = _truncate(f"unexpected error in the {self.provider} decision maker: {exc!r}")
        if outcome.error or outcome.skipped_reason:
            reason = outcome.skipped_reason or outcome.error
            outcome.decision = Decision.hold_all(ctx.symbols, _truncate(f"holding: {reason}", 8000))
        outcome.calls = wait.calls
        outcome.input_tokens = sum(c.input_tokens for c in wait.calls)
        outcome.output_tokens = sum(c.output_tokens for c in wait.calls)
        outcome.cost = sum((c.cost for c in wait.calls), Decimal(0))
        outcome.latency_ms = int((self._clock() - started) * 1000) if wait.calls else 0
        return outcome

    def _decide(self, ctx: DecisionContext, system: str, user: str, outcome: DecisionOutcome, wait: _Wait) -> None:
        budget_reason = self._budget_reason()
        if budget_reason:
            outcome.skipped_reason = budget_reason
            return
        required = REGISTRY[self.provider].required_setting if self.provider in REGISTRY else ""
        if required and not str(getattr(settings, required, "") or "").strip():
            # Checked when the bot starts too; this covers a key removed from a running deployment.
            outcome.error = f"{required} is not set: set it to run bots on {self.provider}"
            return
        turns = [Turn("user", user)]
        try:
            first = self._call(purpose=self.purpose, system=system, turns=turns, symbols=ctx.symbols, wait=wait)
        except _Skipped as skipped:
            outcome.skipped_reason = str(skipped)
            return
        except LLMCallFailed as failed:
            outcome.error = _truncate(f"{self.provider} API request failed: {failed}")
            return
        outcome.raw_output = first.text
        try:
            outcome.decision = self._parse(first, ctx)
            return
        except ModelRefused as refused:
            # Asking a refusing model again costs money and changes nothing: hold.
            outcome.error = _truncate(f"the model refused to answer: {refused}")
            return
        except DecisionInvalid as invalid:
            problem = str(invalid)
        logger.info("%s/%s answer rejected, asking for a repair: %s", self.provider, self.model, problem)
        turns = [
            *turns,
            Turn("assistant", first.text, answer_to=first),
            Turn("user", self._repair_message(problem, first), answer_to=first),
        ]
        try:
            second = self._call(purpose="repair", system=system, turns=turns, symbols=ctx.symbols, wait=wait)
        except (LLMCallFailed, _Skipped) as failed:
            outcome.error = _truncate(f"invalid answer ({problem}); the repair request failed: {failed}")
            return
        outcome.raw_output = f"[answer]\n{first.text}\n\n[repair answer]\n{second.text}"
        try:
            outcome.decision = self._parse(second, ctx)
        except ModelRefused as refused:
            outcome.error = _truncate(f"invalid answer ({problem}); then the model refused: {refused}")
        except DecisionInvalid as invalid:
            outcome.error = _truncate(f"invalid answer after one repair: {invalid} (first answer: {problem})")

    def _repair_message(self, problem: str, answer: Completion) -> str:
        cut = (
            " The answer was cut off at the output limit: be more concise."
            if answer.finish_reason
            in (
                "length",
                "max_tokens",
                "MAX_TOKENS",
                "max_output_tokens",
            )
            else ""
        )
        return (
            f"Your answer was rejected: {problem}.{cut} Answer again with ONLY the corrected JSON object, "
            "matching the schema exactly, with one action per symbol."
        )

    def _parse(self, completion: Completion, ctx: DecisionContext) -> Decision:
        if completion.refusal:
            raise ModelRefused(completion.refusal)
        if completion.data is not None:
            raw = _floats_to_decimal(completion.data)
        elif completion.text.strip():
            raw = parse_json_text(completion.text)
        else:
            raise DecisionInvalid(f"the answer is empty (finish reason: {completion.finish_reason or 'unknown'})")
        if not isinstance(raw, dict):
            raise DecisionInvalid("the answer must be a JSON object with market_summary and actions")
        return validate_decision(raw, symbols=ctx.symbols, prices=self._prices(ctx))

    @staticmethod
    def _prices(ctx: DecisionContext) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = {}
        snapshot = ctx.snapshot
        markets = getattr(snapshot, "markets", None) or {}
        data_symbols = (getattr(snapshot, "data", None) or {}).get("symbols", {})
        for symbol in ctx.symbols:
            if symbol in markets:
                prices[symbol] = markets[symbol].price
            elif (data_symbols.get(symbol) or {}).get("price") is not None:
                prices[symbol] = Decimal(str(data_symbols[symbol]["price"]))
        return prices

    def _budget_reason(self) -> str:
        """`llm_budget: ...` when the LLM spend since 00:00 UTC reached the bot's daily budget, or
        the owner's bots together reached the operator's daily budget per user."""
        user_budget = self.user_daily_budget if self.owner_id is not None else None
        if self.bot_id is None or (self.llm_daily_budget is None and user_budget is None):
            return ""
        from django.db.models import Q, Sum

        from bots.models import LLMCall

        day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        # One query for both budgets; the llmcall_bot_created index (bot, created_at) serves each
        # of the owner's bots.
        calls = LLMCall.objects.filter(created_at__gte=day_start)
        if user_budget is None:
            spent = calls.filter(bot_id=self.bot_id).aggregate(bot=Sum("cost"))
        else:
            spent = calls.filter(bot__owner_id=self.owner_id).aggregate(
                bot=Sum("cost", filter=Q(bot_id=self.bot_id)), user=Sum("cost")
            )
        bot_spent = spent["bot"] or Decimal(0)
        if self.llm_daily_budget is not None and bot_spent >= self.llm_daily_budget:
            return (
                f"llm_budget: the bot spent {bot_spent.normalize():f} USD on LLM calls today, its daily budget is "
                f"{self.llm_daily_budget.normalize():f} USD; holding until 00:00 UTC (exits still run)"
            )
        user_spent = spent.get("user") or Decimal(0)
        if user_budget is not None and user_spent >= user_budget:
            return (
                f"llm_budget: your bots spent {user_spent.normalize():f} USD on LLM calls today, the most this "
                f"platform allows a user per day is {user_budget.normalize():f} USD; holding until 00:00 UTC "
                "(exits still run)"
            )
        return ""

    def _call(self, *, purpose: str, system: str, turns: list[Turn], symbols: list[str], wait: _Wait) -> Completion:
        """One API request with the retry policy; appends its LLMCallRecord to `wait.calls`."""
        limiter = self._limiter or default_limiter()
        key = limiter.key(self.provider, self.model)
        record = LLMCallRecord(provider=self.provider, model=self.model, purpose=purpose, ok=False, attempts=0)
        started = self._clock()

        def fail(message: str) -> LLMCallFailed:
            record.error = _truncate(message)
            record.latency_ms = int((self._clock() - started) * 1000)
            return LLMCallFailed(message, attempts=record.attempts, latency_ms=record.latency_ms)

        while True:
            # Only the cycle's very first request waits for a slot outside the model wait cap.
            first_request = wait.deadline is None
            slot_wait = float(settings.LLM_RATE_LIMIT_WAIT_SECONDS)
            if not first_request:
                slot_wait = min(slot_wait, max(0.0, wait.remaining()))
            # The fair share is per user: one user's bots cannot keep every other user's waiting.
            user = "" if self.owner_id is None else str(self.owner_id)
            if not limiter.acquire(key, wait_seconds=slot_wait, user=user):
                reason = (
                    f"rate_limited: no {self.provider}/{self.model} request slot within {slot_wait:g}s "
                    f"(limit {settings.LLM_RATE_LIMIT_PER_MINUTE}/min shared by all workers, a fair share per user)"
                )
                if first_request:
                    raise _Skipped(reason)
                wait.calls.append(record)
                raise fail(reason)
            if wait.deadline is None:
                # The model wait cap starts with the first request actually sent.
                wait.deadline = self._clock() + float(settings.LLM_MAX_WAIT_SECONDS)
            remaining = wait.remaining()
            if remaining < MIN_ATTEMPT_SECONDS:
                wait.calls.append(record)
                raise fail(f"gave up: waited the maximum {settings.LLM_MAX_WAIT_SECONDS:g}s (LLM_MAX_WAIT_SECONDS)")
            record.attempts += 1
            timeout = min(float(settings.LLM_TIMEOUT_SECONDS), remaining)
            try:
                completion = self._send_within(system=system, turns=turns, symbols=symbols, timeout=timeout)
            except ProviderError as err:
                logger.warning(
                    "%s/%s attempt %d failed (%s): %s",
                    self.provider,
                    self.model,
                    record.attempts,
                    "retryable" if err.retryable else "final",
                    err,
                )
                if not err.retryable:
                    wait.calls.append(record)
                    raise fail(str(err)) from None
                if record.attempts > int(settings.LLM_MAX_RETRIES):
                    wait.calls.append(record)
                    raise fail(f"{err} (gave up after {record.attempts} attempts)") from None
                delay = backoff_delay(record.attempts, err.retry_after)
                if delay >= wait.remaining() - MIN_ATTEMPT_SECONDS:
                    wait.calls.append(record)
                    raise fail(
                        f"{err} (a retry in {delay:.1f}s would pass the {settings.LLM_MAX_WAIT_SECONDS:g}s "
                        f"LLM_MAX_WAIT_SECONDS cap; gave up after {record.attempts} attempts)"
                    ) from None
                self._sleep(delay)
                continue
            record.ok = True
            record.input_tokens = completion.input_tokens
            record.output_tokens = completion.output_tokens
            record.cost = cost_of(
                provider=self.provider,
                model=self.model,
                input_tokens=completion.input_tokens,
                output_tokens=completion.output_tokens,
            )
            record.latency_ms = int((self._clock() - started) * 1000)
            wait.calls.append(record)
            return completion
