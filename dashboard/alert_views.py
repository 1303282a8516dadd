"""The dashboard's alerts page: channels (with their test button and verified-at time), rules,
linking a Telegram chat, and the record of every delivery attempt. Plain forms posting back to
the page; the writes go through alerts.services like the API's."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST

from alerts import services
from alerts.models import AlertRule, Channel, Delivery
from alerts.rules import THRESHOLDS
from dashboard.alert_forms import ChannelForm, RuleForm

RECENT_DELIVERIES = 30
TEST_INTERVAL_SECONDS = 10


def _common(request: HttpRequest) -> dict[str, Any]:
    from dashboard.views import _common as common

    return common(request)


def _owner(request: HttpRequest) -> int:
    assert request.user.pk is not None
    return int(request.user.pk)


@login_required
@ensure_csrf_cookie
def alerts_page(request: HttpRequest) -> HttpResponse:
    owner = _owner(request)
    channel_form = ChannelForm(owner_id=owner, prefix="channel")
    rule_form = RuleForm(owner_id=owner, prefix="rule")
    if request.method == "POST" and request.POST.get("form") == "channel":
        channel_form = ChannelForm(request.POST, owner_id=owner, prefix="channel")
        if channel_form.is_valid():
            data = dict(channel_form.cleaned_data)
            kind = data.pop("kind")
            channel = services.channel_create(owner_id=owner, kind=kind, data=data)
            messages.success(request, f"Channel '{channel.name}' added: press Test to check it.")
            return redirect(reverse("dashboard:alerts") + "#channels")
    elif request.method == "POST" and request.POST.get("form") == "rule":
        rule_form = RuleForm(request.POST, owner_id=owner, prefix="rule")
        if rule_form.is_valid():
            data = dict(rule_form.cleaned_data)
            channels = data.pop("channels")
            rule = services.rule_create(owner_id=owner, data=data, channels=channels)
            messages.success(request, f"Rule '{rule}' added.")
            return redirect(reverse("dashboard:alerts") + "#rules")
    return _render(request, channel_form=channel_form, rule_form=rule_form)


def _render(request: HttpRequest, **forms: Any) -> HttpResponse:
    owner = _owner(request)
    channels = list(Channel.objects.filter(owner_id=owner).order_by("kind", "name"))
    rules = list(AlertRule.objects.filter(owner_id=owner).select_related("bot").prefetch_related("channels"))
    deliveries = list(
        Delivery.objects.filter(channel__owner_id=owner)
        .select_related("alert", "channel")
        .order_by("-created_at", "-pk")[:RECENT_DELIVERIES]
    )
    context = {
        "channels": channels,
        "rules": [(rule, THRESHOLDS[rule.kind].unit) for rule in rules],
        "deliveries": deliveries,
        "tested": request.GET.get("tested", ""),
        "telegram_link": request.session.pop("telegram_link", None),
        "page": "alerts",
        **forms,
        **_common(request),
    }
    return render(request, "dashboard/alerts.html", context)


def _channel(request: HttpRequest, channel_id: int) -> Channel:
    channel = Channel.objects.filter(pk=channel_id, owner_id=_owner(request)).first()
    if channel is None:
        raise Http404("no such channel")  # another user's channel looks exactly like a missing one
    return channel


@login_required
@require_POST
def channel_action(request: HttpRequest, channel_id: int, action: str) -> HttpResponse:
    channel = _channel(request, channel_id)
    target = reverse("dashboard:alerts") + "#channels"
    if action == "test":
        if not cache.add(f"alerts:test:{channel.pk}", 1, timeout=TEST_INTERVAL_SECONDS):
            messages.error(request, "One test per channel every 10 seconds: wait a moment.")
            return redirect(target)
        alert = services.channel_test(channel=channel)
        messages.info(request, f"Test message sent to '{channel.name}'.")
        return redirect(reverse("dashboard:alerts") + f"?tested={alert.pk}#deliveries")
    if action in ("enable", "disable"):
        services.channel_update(channel=channel, data={"enabled": action == "enable"})
        messages.success(request, f"'{channel.name}' {action}d.")
    elif action == "delete":
        try:
            services.channel_delete(channel=channel)
            messages.success(request, f"'{channel.name}' deleted.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        raise Http404("no such action")
    return redirect(target)


@login_required
@require_POST
def rule_action(request: HttpRequest, rule_id: int, action: str) -> HttpResponse:
    rule = AlertRule.objects.filter(pk=rule_id, owner_id=_owner(request)).first()
    if rule is None:
        raise Http404("no such rule")
    if action in ("enable", "disable"):
        services.rule_update(rule=rule, data={"enabled": action == "enable"})
        messages.success(request, f"Rule '{rule}' {action}d.")
    elif action == "delete":
        rule.delete()
        messages.success(request, f"Rule '{rule}' deleted.")
    else:
        raise Http404("no such action")
    return redirect(reverse("dashboard:alerts") + "#rules")


@login_required
@ensure_csrf_cookie
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    owner = _owner(request)
    rule = AlertRule.objects.filter(pk=rule_id, owner_id=owner).first()
    if rule is None:
        raise Http404("no such rule")
    form = RuleForm(request.POST or None, instance=rule, owner_id=owner, prefix="rule")
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        channels = data.pop("channels")
        services.rule_update(rule=rule, data=data, channels=channels)
        messages.success(request, f"Rule '{rule}' saved.")
        return redirect(reverse("dashboard:alerts") + "#rules")
    return render(
        request, "dashboard/alert_rule.html", {"form": form, "rule": rule, "page": "alerts", **_common(request)}
    )


@login_required
@require_POST
def telegram_link(request: HttpRequest) -> HttpResponse:
    from alerts.telegram_bot import bot_username

    code, expires = services.telegram_link_create(owner_id=_owner(request))
    username = bot_username()
    # Shown once, on the next page only (the session carries it across the redirect).
    request.session["telegram_link"] = {
        "code": code,
        "expires": expires.strftime("%H:%M UTC"),
        "username": username,
        "link": f"https://t.me/{username}?start={code}" if username else "",
    }
    return redirect(reverse("dashboard:alerts") + "#telegram")
