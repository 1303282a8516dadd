"""Alerts, the write side. Other apps raise alerts only through `alert_raise` (and read the
constants they need from here: `AlertKind`, `Severity`, `Event`).

`alert_raise` is the single entry point for every event: the owner's rules decide whether it
becomes an alert, how loud it is and where it goes (see alerts.rules). The alert is written in the
caller's transaction; the in-app stream is published and the other channels' deliveries are
enqueued (one Celery task per channel, on the `alerts` queue) only after commit, so a rolled back
event is never told and a slow or dead channel never holds up the caller (a trading cycle).
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts import realtime
from alerts.models import Alert, AlertRule, Channel, Delivery, RuleState, TelegramLink
from alerts.rules import (
    ALERT_KIND_OF,
    EVENT_RULE_KINDS,
    Event,
    RuleSpec,
    StateView,
    condition_step,
    event_passes,
    event_step,
    louder,
    rule_hears,
    subject_of,
)

logger = logging.getLogger(__name__)

# What callers need, so no other app imports alerts.models.
AlertKind = Alert.Kind
Severity = Alert.Severity
__all__ = ["AlertKind", "Event", "Severity", "alert_notice", "alert_raise"]


# --- Raising ---------------------------------------------------------------------------------------


def _infer_event(*, kind: str, payload: dict[str, Any]) -> str:
    """The event of a caller that did not name one (kept so older call sites keep working)."""
    if "breaker" in payload or payload.get("llm_budget"):
        return Event.BREAKER_TRIPPED
    if payload.get("reason") in ("stop_loss", "take_profit", "liquidation"):
        return Event.POSITION_CLOSED
    if "closed_positions" in payload:
        return Event.BOT_STOPPED
    return Event.NOTICE


def alert_raise(
    *,
    owner_id: int,
    kind: str,
    message: str,
    severity: str = Alert.Severity.INFO,
    bot_id: int | None = None,
    payload: dict[str, Any] | None = None,
    event: str | None = None,
    dedupe_key: str = "",
    notional: Decimal | None = None,
    net_pnl: Decimal | None = None,
) -> Alert | None:
    """Turn an event into an alert if the owner's rules want it; None when no rule fired.

    Every enabled rule of the owner that hears the event (its kind and bot scope, its size
    filter) and whose cooldown for this bot has passed fires; together they make ONE alert at the
    loudest of their severities and the event's own, sent once to each of their channels. A
    `dedupe_key` names the underlying fact (`position:42`): a second report of it is dropped.
    Events without rules (`Event.NOTICE`) always reach the in-app feed.
    """
    payload = payload or {}
    event = event or _infer_event(kind=kind, payload=payload)
    rules = {} if event in (Event.NOTICE, Event.TEST) else rules_for(owner_ids=[owner_id], events=[event])
    heard = [
        r
        for r in rules.get(owner_id, [])
        if rule_hears(r, event=event, bot_id=bot_id) and event_passes(r, notional=notional, net_pnl=net_pnl)
    ]
    return _raise(
        owner_id=owner_id,
        event=event,
        kind=kind,
        message=message,
        severity=severity,
        bot_id=bot_id,
        payload=payload,
        dedupe_key=dedupe_key,
        fired=lambda now: [r for r in heard if _advance(rule=r, subject=subject_of(bot_id=bot_id), now=now)],
    )


def alert_notice(
    *, owner_id: int, message: str, severity: str = Alert.Severity.WARNING, **payload: Any
) -> Alert | None:
    """Tell a user something about their alerting itself, in-app, whatever their rules say."""
    return alert_raise(
        owner_id=owner_id,
        kind=Alert.Kind.SYSTEM,
        severity=severity,
        message=message,
        payload=payload,
        event=Event.NOTICE,
    )


def rules_for(
    *, owner_ids: Iterable[int] | None, events: Iterable[str] = (), kinds: Iterable[str] = ()
) -> dict[int, list[RuleSpec]]:
    """The enabled rules of these owners (None: everyone's) that hear these events (or are of these
    kinds), with their channels, by owner."""
    wanted = set(kinds)
    for event in events:
        wanted |= EVENT_RULE_KINDS.get(event, frozenset())
    if not wanted:
        return {}
    # alertrule_owner_kind: WHERE owner_id IN (...) AND kind IN (...).
    queryset = AlertRule.objects.filter(kind__in=wanted, enabled=True)
    if owner_ids is not None:
        owners = list(set(owner_ids))
        if not owners:
            return {}
        queryset = queryset.filter(owner_id__in=owners)
    rows = list(
        queryset.values_list(
            "id", "owner_id", "kind", "bot_id", "severity", "cooldown_seconds", "threshold", "window_minutes", "symbol"
        )
    )
    channels: dict[int, list[int]] = {}
    if rows:
        through = AlertRule.channels.through
        # The same filter as a subquery: no list of ids that grows with the number of rules.
        for rule_id, channel_id in through.objects.filter(alertrule__in=queryset.values("pk")).values_list(
            "alertrule_id", "channel_id"
        ):
            channels.setdefault(rule_id, []).append(channel_id)
    found: dict[int, list[RuleSpec]] = {}
    for rule_id, owner, kind, bot, severity, cooldown, threshold, window, symbol in rows:
        found.setdefault(owner, []).append(
            RuleSpec(
                id=rule_id,
                kind=kind,
                bot_id=bot,
                severity=severity,
                cooldown_seconds=cooldown,
                channel_ids=tuple(sorted(channels.get(rule_id, []))),
                threshold=threshold,
                window_minutes=window,
                symbol=symbol,
            )
        )
    return found


def _state_filter(view: StateView) -> Q:
    fired = Q(last_fired_at__isnull=True) if view.last_fired_at is None else Q(last_fired_at=view.last_fired_at)
    return fired & Q(active=view.active)


def _advance(
    *, rule: RuleSpec, subject: str, now: datetime, holding: bool | None = None, state: RuleState | None = None
) -> bool:
    """Step a rule's state for a subject (an event when `holding` is None, else a condition) and
    store it; True if the rule fires now.

    The stored state is updated only if it is still the one we read (optimistic concurrency), so
    two workers seeing the same event or condition at once fire the rule once.
    """
    if state is None:
        state = RuleState.objects.filter(rule_id=rule.id, subject=subject).first()
    view = StateView() if state is None else StateView(active=state.active, last_fired_at=state.last_fired_at)
    if holding is None:
        new, fire = event_step(state=view, cooldown_seconds=rule.cooldown_seconds, now=now)
    else:
        new, fire = condition_step(state=view, holding=holding, cooldown_seconds=rule.cooldown_seconds, now=now)
    if new == view:
        return False
    if state is None:
        # The first time for this subject: whoever inserts the row fires (the unique constraint
        # on (rule, subject) makes a concurrent twin fail here and fire nothing).
        try:
            with transaction.atomic():
                RuleState.objects.create(
                    rule_id=rule.id, subject=subject, active=new.active, last_fired_at=new.last_fired_at, updated_at=now
                )
        except IntegrityError:
            return False
        return fire
    updated = RuleState.objects.filter(_state_filter(view), pk=state.pk).update(
        active=new.active, last_fired_at=new.last_fired_at, updated_at=now
    )
    return fire and updated == 1


def _raise(
    *,
    owner_id: int,
    event: str,
    kind: str,
    message: str,
    severity: str,
    bot_id: int | None,
    payload: dict[str, Any],
    dedupe_key: str,
    fired: Any,
    channels_cache: dict[tuple[int, ...], list[Channel]] | None = None,
) -> Alert | None:
    if dedupe_key and Alert.objects.filter(owner_id=owner_id, dedupe_key=dedupe_key).exists():
        return None
    now = timezone.now()
    try:
        with transaction.atomic():
            rules: list[RuleSpec] = fired(now)
            if not rules and event not in (Event.NOTICE, Event.TEST):
                return None
            for rule in rules:
                severity = louder(severity, rule.severity)
            channel_ids = tuple(sorted({c for r in rules for c in r.channel_ids}))
            channels = None if channels_cache is None else channels_cache.get(channel_ids)
            if channels is None:
                channels = list(Channel.objects.filter(pk__in=channel_ids, owner_id=owner_id, enabled=True))
                if channels_cache is not None:
                    channels_cache[channel_ids] = channels
            in_app = event == Event.NOTICE or any(c.kind == Channel.Kind.IN_APP for c in channels)
            alert = Alert.objects.create(
                owner_id=owner_id,
                bot_id=bot_id,
                kind=kind,
                severity=severity,
                message=message[:500],
                payload=payload,
                event=event,
                dedupe_key=dedupe_key[:200],
                in_app=in_app,
            )
            if rules:
                # One INSERT (a new alert has no rules to compare with, as `.set()` would).
                through = Alert.rules.through
                through.objects.bulk_create([through(alert_id=alert.pk, alertrule_id=r.id) for r in rules])
            _dispatch(alert=alert, channels=channels, now=now)
    except IntegrityError:
        if not dedupe_key:
            raise
        return None  # the same fact was raised at the same moment by someone else: theirs stands
    logger.info("alert %s/%s for user %s: %s", event, severity, owner_id, message)
    return alert


def _dispatch(*, alert: Alert, channels: Sequence[Channel], now: datetime) -> None:
    """In-app: recorded as delivered and pushed live; the rest: one task each, after commit."""
    external = []
    for channel in channels:
        if channel.kind == Channel.Kind.IN_APP:
            Delivery.objects.create(
                alert=alert, channel=channel, status=Delivery.Status.SENT, latency_ms=0, finished_at=now
            )
        else:
            external.append(channel.pk)
    if alert.in_app:
        realtime.publish_alert(alert)
    if external:
        # robust: a broker that is away must not fail the caller's (committed) work.
        transaction.on_commit(partial(_enqueue, alert.pk, external), robust=True)


def delivery_schedule(*, alert_id: int, channel_id: int, attempt: int, countdown: float) -> None:
    """Enqueue attempt `attempt` of a delivery in `countdown` seconds."""
    _enqueue(alert_id, [channel_id], attempt, countdown)


def _enqueue(alert_id: int, channel_ids: list[int], attempt: int = 1, countdown: float = 0) -> None:
    from alerts.tasks import alert_deliver

    for channel_id in channel_ids:
        try:
            alert_deliver.apply_async((alert_id, channel_id, attempt), countdown=countdown)
        except Exception:
            logger.exception("could not enqueue the delivery of alert %s to channel %s", alert_id, channel_id)


# --- Delivery --------------------------------------------------------------------------------------


# Below the Redis broker's visibility timeout (an hour), after which a waiting task is redelivered.
MAX_RETRY_DELAY = 1800.0


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: exponential (x3) from ALERT_RETRY_BASE_SECONDS, capped at half an
    hour, with ±20 % jitter so a receiver that came back is not hit by every retry at once."""
    base = float(settings.ALERT_RETRY_BASE_SECONDS) * 3 ** (attempt - 1)
    return min(base, MAX_RETRY_DELAY) * random.uniform(0.8, 1.2)  # jitter, not a secret


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status: str
    error: str = ""
    retry_in: float | None = None  # seconds until the next attempt, None: no more attempts


def delivery_attempt(*, alert_id: int, channel_id: int, attempt: int) -> AttemptResult:
    """Send one alert to one channel once, recording the attempt; says whether and when to retry.

    Idempotent per (alert, channel, attempt): a redelivered task finds its finished attempt (or a
    sent earlier one) and does nothing. No transaction and no database connection is held while
    the channel is called, which may take seconds.
    """
    from alerts.channels import DeliveryError, send

    alert = Alert.objects.select_related("bot").filter(pk=alert_id).first()
    channel = Channel.objects.filter(pk=channel_id).first()
    if alert is None or channel is None or channel.owner_id != alert.owner_id:
        return AttemptResult(status="gone")
    if Delivery.objects.filter(alert=alert, channel=channel, status=Delivery.Status.SENT).exists():
        return AttemptResult(status=Delivery.Status.SENT)
    row, created = Delivery.objects.get_or_create(alert=alert, channel=channel, attempt=attempt)
    if not created and row.status != Delivery.Status.SENDING:
        return AttemptResult(status=row.status)
    if not channel.enabled and alert.event != Event.TEST:
        return _finish(row, status=Delivery.Status.FAILED, error="the channel is disabled", permanent=False)
    if not connection.in_atomic_block:
        # The send may wait seconds on a slow server: give the connection back meanwhile (Django
        # reopens it), so waiting deliveries do not hold PostgreSQL connections.
        connection.close()
    started = time.perf_counter()
    try:
        send(channel=channel, alert=alert, attempt=attempt)
    except DeliveryError as exc:
        latency = round((time.perf_counter() - started) * 1000)
        return _failed(row, channel=channel, exc=exc, latency_ms=latency)
    except Exception as exc:
        # A bug or an unforeseen library error: recorded and retried, never lost silently.
        logger.exception("delivery of alert %s to channel %s failed", alert_id, channel_id)
        latency = round((time.perf_counter() - started) * 1000)
        return _failed(
            row, channel=channel, exc=DeliveryError(f"{type(exc).__name__}: {exc}", transient=True), latency_ms=latency
        )
    latency = round((time.perf_counter() - started) * 1000)
    Channel.objects.filter(pk=channel.pk).update(verified_at=timezone.now(), consecutive_failures=0)
    return _finish(row, status=Delivery.Status.SENT, latency_ms=latency)


def _finish(
    row: Delivery,
    *,
    status: str,
    error: str = "",
    permanent: bool = False,
    latency_ms: int | None = None,
    retry_in: float | None = None,
) -> AttemptResult:
    Delivery.objects.filter(pk=row.pk).update(
        status=status, error=error[:2000], permanent=permanent, latency_ms=latency_ms, finished_at=timezone.now()
    )
    return AttemptResult(status=status, error=error, retry_in=retry_in)


def _failed(row: Delivery, *, channel: Channel, exc: Any, latency_ms: int) -> AttemptResult:
    error = str(exc)
    if exc.transient:
        if row.attempt < settings.ALERT_DELIVERY_MAX_ATTEMPTS:
            delay = min(exc.retry_after, MAX_RETRY_DELAY) if exc.retry_after is not None else retry_delay(row.attempt)
            return _finish(row, status=Delivery.Status.RETRYING, error=error, latency_ms=latency_ms, retry_in=delay)
        return _finish(
            row,
            status=Delivery.Status.FAILED,
            error=f"{error} (gave up after {row.attempt} attempts)",
            latency_ms=latency_ms,
        )
    result = _finish(row, status=Delivery.Status.FAILED, error=error, permanent=True, latency_ms=latency_ms)
    if exc.blame_channel:
        _count_permanent_failure(channel=channel, error=error)
    return result


def _count_permanent_failure(*, channel: Channel, error: str) -> None:
    """A channel whose deliveries keep failing permanently is switched off, and its owner told in-app."""
    Channel.objects.filter(pk=channel.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    limit = settings.ALERT_CHANNEL_DISABLE_AFTER
    reason = f"disabled after {limit} failed deliveries in a row; last error: {error}"[:300]
    # Conditional: of two failing workers, one disables it and one notice is raised.
    disabled = Channel.objects.filter(pk=channel.pk, enabled=True, consecutive_failures__gte=limit).update(
        enabled=False, disabled_reason=reason
    )
    if disabled:
        logger.warning("alert channel %s of user %s disabled: %s", channel.pk, channel.owner_id, error)
        alert_notice(
            owner_id=channel.owner_id,
            severity=Alert.Severity.CRITICAL,
            message=f"Alert channel '{channel.name}' was disabled: {limit} deliveries in a row failed ({error[:200]}). "
            "Fix it and enable it again.",
            channel_id=channel.pk,
        )


# --- Channels --------------------------------------------------------------------------------------

CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    Channel.Kind.EMAIL: ("name", "enabled", "email"),
    Channel.Kind.WEBHOOK: ("name", "enabled", "url", "secret"),
    Channel.Kind.TELEGRAM: ("name", "enabled"),
    Channel.Kind.IN_APP: ("name", "enabled"),
}
MIN_SECRET_LENGTH = 16


def channel_problems(*, channel: Channel) -> dict[str, str]:
    """Field errors of a channel's settings (the webhook URL's own address is checked here; names
    are resolved and checked again at every send)."""
    from alerts.channels.netguard import url_problem

    problems: dict[str, str] = {}
    if channel.kind == Channel.Kind.EMAIL and not channel.email:
        problems["email"] = "an email channel needs an address"
    if channel.kind == Channel.Kind.WEBHOOK:
        if not channel.url:
            problems["url"] = "a webhook needs a URL"
        else:
            problem = url_problem(channel.url)
            if problem:
                problems["url"] = problem
        if len(channel.secret or "") < MIN_SECRET_LENGTH:
            problems["secret"] = f"at least {MIN_SECRET_LENGTH} characters: the receiver checks the signature with it"
    return problems


def _validate_channel(channel: Channel) -> None:
    channel.full_clean()
    problems = channel_problems(channel=channel)
    if problems:
        raise ValidationError(problems)


def channel_create(*, owner_id: int, kind: str, data: dict[str, Any]) -> Channel:
    """A new email or webhook channel (Telegram chats are linked with a code, in-app exists already)."""
    if kind == Channel.Kind.TELEGRAM:
        raise ValidationError({"kind": "link a Telegram chat with a code from POST /api/alert-channels/telegram-link/"})
    if kind == Channel.Kind.IN_APP:
        raise ValidationError({"kind": "every account has its in-app channel already"})
    if kind not in CHANNEL_FIELDS:
        raise ValidationError({"kind": f"one of {', '.join(k for k in Channel.Kind.values if k != 'in_app')}"})
    fields = {k: v for k, v in data.items() if k in CHANNEL_FIELDS[kind]}
    channel = Channel(owner_id=owner_id, kind=kind, **fields)
    _validate_channel(channel)
    channel.save()
    return channel


def channel_update(*, channel: Channel, data: dict[str, Any]) -> Channel:
    """Change a channel's settings; enabling it again clears its failure count."""
    fields = {k: v for k, v in data.items() if k in CHANNEL_FIELDS[channel.kind]}
    if channel.kind == Channel.Kind.WEBHOOK and "secret" in fields and not fields["secret"]:
        fields.pop("secret")  # write-only: an empty value keeps the one set
    for key, value in fields.items():
        setattr(channel, key, value)
    update = [*fields, "updated_at"]
    if fields.get("enabled") is True:
        channel.consecutive_failures = 0
        channel.disabled_reason = ""
        update += ["consecutive_failures", "disabled_reason"]
    if {"email", "url"} & set(fields):
        channel.verified_at = None  # a new address has not been reached yet
        update.append("verified_at")
    _validate_channel(channel)
    channel.save(update_fields=update)
    return channel


def channel_delete(*, channel: Channel) -> None:
    if channel.kind == Channel.Kind.IN_APP:
        raise ValidationError({"kind": "the in-app channel cannot be deleted; leave it out of your rules instead"})
    channel.delete()


def channel_test(*, channel: Channel) -> Alert:
    """Send a test message to one channel (even a disabled one, to see whether it works again)."""
    with transaction.atomic():
        alert = Alert.objects.create(
            owner_id=channel.owner_id,
            kind=Alert.Kind.SYSTEM,
            severity=Alert.Severity.INFO,
            message=f"Test message from tradingagent to '{channel.name}': this channel works.",
            payload={"test": True, "channel_id": channel.pk},
            event=Event.TEST,
            in_app=channel.kind == Channel.Kind.IN_APP,
        )
        if channel.kind == Channel.Kind.IN_APP:
            _dispatch(alert=alert, channels=[channel], now=timezone.now())
            Channel.objects.filter(pk=channel.pk).update(verified_at=timezone.now())
        else:
            transaction.on_commit(partial(_enqueue, alert.pk, [channel.pk]), robust=True)
    return alert


# --- Rules -----------------------------------------------------------------------------------------

RULE_FIELDS = (
    "name",
    "bot",
    "kind",
    "threshold",
    "window_minutes",
    "symbol",
    "severity",
    "cooldown_seconds",
    "enabled",
)


def _set_channels(*, rule: AlertRule, channels: Iterable[Channel] | None) -> None:
    if channels is None:
        return
    chosen = list(channels)
    foreign = [c for c in chosen if c.owner_id != rule.owner_id]
    if foreign:
        raise ValidationError({"channels": "no such channel"})
    rule.channels.set(chosen)


def rule_create(*, owner_id: int, data: dict[str, Any], channels: Iterable[Channel] | None = None) -> AlertRule:
    rule = AlertRule(owner_id=owner_id, **{k: v for k, v in data.items() if k in RULE_FIELDS})
    rule.full_clean()
    with transaction.atomic():
        rule.save()
        _set_channels(rule=rule, channels=channels)
    return rule


def rule_update(*, rule: AlertRule, data: dict[str, Any], channels: Iterable[Channel] | None = None) -> AlertRule:
    changed = {k: v for k, v in data.items() if k in RULE_FIELDS}
    for key, value in changed.items():
        setattr(rule, key, value)
    rule.full_clean()
    with transaction.atomic():
        rule.save()
        _set_channels(rule=rule, channels=channels)
        if {"kind", "bot", "threshold", "window_minutes", "symbol"} & set(changed):
            # A changed condition starts afresh: the old "already told" state was about another question.
            rule.states.all().delete()
    return rule


# --- Defaults --------------------------------------------------------------------------------------

# A new account hears what a trader away from the screen must know, in the dashboard only until
# they add a channel: the seed plans' drawdown over 10 % and volatility over 5 %, breakers,
# stops and pauses, closed positions, failing decision makers and unusual activity.
DEFAULT_RULES: list[dict[str, Any]] = [
    {"kind": "breaker_tripped", "severity": "critical", "cooldown_seconds": 0},
    {"kind": "bot_stopped", "severity": "warning", "cooldown_seconds": 0},
    {"kind": "position_closed", "severity": "info", "cooldown_seconds": 0},
    {"kind": "drawdown", "severity": "critical", "threshold": Decimal(10), "cooldown_seconds": 3600},
    {
        "kind": "volatility",
        "severity": "warning",
        "threshold": Decimal(5),
        "window_minutes": 60,
        "cooldown_seconds": 3600,
    },
    {
        "kind": "failure_rate",
        "severity": "warning",
        "threshold": Decimal(50),
        "window_minutes": 60,
        "cooldown_seconds": 3600,
    },
    {
        "kind": "unusual_activity",
        "severity": "warning",
        "threshold": Decimal(3),
        "window_minutes": 60,
        "cooldown_seconds": 3600,
    },
]


def defaults_create(*, owner_id: int) -> None:
    """The in-app channel and the default rules of a new account (idempotent)."""
    with transaction.atomic():
        in_app, _ = Channel.objects.get_or_create(
            owner_id=owner_id, kind=Channel.Kind.IN_APP, defaults={"name": "Dashboard", "verified_at": timezone.now()}
        )
        if AlertRule.objects.filter(owner_id=owner_id).exists():
            return
        for spec in DEFAULT_RULES:
            rule = AlertRule.objects.create(owner_id=owner_id, **spec)
            rule.channels.add(in_app)


# --- Telegram linking ------------------------------------------------------------------------------

LINK_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen and typed
LINK_CODE_LENGTH = 12  # 60 bits: with a 10-minute life and attempt limits, not guessable


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def telegram_link_create(*, owner_id: int) -> tuple[str, datetime]:
    """A one-time code to send to the bot (`/start CODE`); only its hash is stored. Earlier open codes end."""
    now = timezone.now()
    code = "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_CODE_LENGTH))
    expires = now + timedelta(minutes=settings.TELEGRAM_LINK_CODE_MINUTES)
    with transaction.atomic():
        TelegramLink.objects.filter(owner_id=owner_id, used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        TelegramLink.objects.create(owner_id=owner_id, code_hash=_code_hash(code), expires_at=expires)
    return code, expires


class LinkRefused(Exception):
    """The code is unknown, used or expired, or the chat belongs to another account."""


def telegram_link_redeem(*, code: str, chat_id: int, telegram_user_id: int, title: str) -> Channel:
    """Link a chat to the account whose code it sent; the code works once."""
    now = timezone.now()
    with transaction.atomic():
        # Conditional UPDATE: of two chats sending the same code at once, one links.
        link = TelegramLink.objects.filter(code_hash=_code_hash(code), used_at__isnull=True, expires_at__gt=now).first()
        if link is None or not TelegramLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now):
            raise LinkRefused(
                "this code is not valid: it is unknown, used or expired. Make a new one in the dashboard."
            )
        existing = (
            Channel.objects.select_for_update().filter(kind=Channel.Kind.TELEGRAM, telegram_chat_id=chat_id).first()
        )
        if existing is not None and existing.owner_id != link.owner_id:
            raise LinkRefused("this chat is linked to another account already.")
        if existing is not None:
            existing.telegram_user_id = telegram_user_id
            existing.enabled = True
            existing.consecutive_failures = 0
            existing.disabled_reason = ""
            existing.verified_at = now
            existing.save()
            channel = existing
        else:
            name = f"Telegram {title}"[:100] if title else f"Telegram {chat_id}"
            if Channel.objects.filter(owner_id=link.owner_id, name=name).exists():
                name = f"{name[:80]} ({chat_id})"
            channel = Channel.objects.create(
                owner_id=link.owner_id,
                kind=Channel.Kind.TELEGRAM,
                name=name,
                telegram_chat_id=chat_id,
                telegram_user_id=telegram_user_id,
                verified_at=now,
            )
        TelegramLink.objects.filter(pk=link.pk).update(channel=channel)
    return channel


def telegram_unlink(*, channel: Channel) -> None:
    channel_delete(channel=channel)


# --- Books evaluation (used by the beat task) -----------------------------------------------------


def condition_advance(*, rule: RuleSpec, subject: str, holding: bool, now: datetime, state: RuleState | None) -> bool:
    """Step a condition rule for one subject; True when it fires now (see alerts.rules.condition_step)."""
    if state is None and not holding:
        return False  # nothing to remember: no row for subjects that never held
    return _advance(rule=rule, subject=subject, now=now, holding=holding, state=state)


def condition_raise(
    *,
    owner_id: int,
    rule: RuleSpec,
    event: str,
    message: str,
    bot_id: int | None,
    payload: dict[str, Any],
    channels_cache: dict[tuple[int, ...], list[Channel]] | None = None,
) -> Alert | None:
    """An alert for a condition rule that fired (its state is already stepped). `channels_cache`
    lets a run that raises many alerts read each set of channels once."""
    return _raise(
        owner_id=owner_id,
        event=event,
        kind=ALERT_KIND_OF.get(event, Alert.Kind.SYSTEM),
        message=message,
        severity=rule.severity,
        bot_id=bot_id,
        payload={**payload, "rule_id": rule.id},
        dedupe_key="",
        fired=lambda now: [rule],
        channels_cache=channels_cache,
    )


def book_event_raise(
    *,
    owner_id: int,
    rules: Sequence[RuleSpec],
    event: str,
    message: str,
    severity: str,
    bot_id: int,
    payload: dict[str, Any],
    dedupe_key: str,
    notional: Decimal | None = None,
    net_pnl: Decimal | None = None,
) -> Alert | None:
    """`alert_raise` for events the evaluator reads from the books, with the owner's rules preloaded."""
    heard = [
        r
        for r in rules
        if rule_hears(r, event=event, bot_id=bot_id) and event_passes(r, notional=notional, net_pnl=net_pnl)
    ]
    if not heard:
        return None
    return _raise(
        owner_id=owner_id,
        event=event,
        kind=ALERT_KIND_OF.get(event, Alert.Kind.SYSTEM),
        message=message,
        severity=severity,
        bot_id=bot_id,
        payload=payload,
        dedupe_key=dedupe_key,
        fired=lambda now: [r for r in heard if _advance(rule=r, subject=subject_of(bot_id=bot_id), now=now)],
    )
