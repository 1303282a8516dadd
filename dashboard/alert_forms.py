"""Forms of the dashboard's alerts page: the same checks as the API (alerts.rules, alerts.services)."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from alerts.models import AlertRule, Channel
from alerts.rules import THRESHOLDS, rule_problems
from alerts.services import channel_problems
from bots.models import Bot


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(choices=[("email", "Email"), ("webhook", "Webhook")])
    name = forms.CharField(max_length=100)
    email = forms.EmailField(required=False, help_text="email: where alerts are sent")
    url = forms.URLField(required=False, max_length=500, assume_scheme="https", help_text="webhook: the URL to POST to")
    secret = forms.CharField(
        required=False,
        max_length=200,
        help_text="webhook: the HMAC key your receiver checks the signature with. Copy it now: it is never shown again.",
    )

    def __init__(self, *args: Any, owner_id: int, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"secret": secrets.token_urlsafe(24)})
        super().__init__(*args, **kwargs)
        self.owner_id = owner_id

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if Channel.objects.filter(owner_id=self.owner_id, name=name).exists():
            raise ValidationError("you have a channel of this name already")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        probe = Channel(kind=data.get("kind", ""), email=data.get("email", ""), url=data.get("url", ""),
                        secret=data.get("secret", ""))  # fmt: skip
        for field, problem in channel_problems(channel=probe).items():
            self.add_error(field, problem)
        return data


class RuleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = AlertRule
        fields = ["kind", "name", "bot", "threshold", "window_minutes", "symbol", "severity", "cooldown_seconds",
                  "channels", "enabled"]  # fmt: skip
        widgets = {"channels": forms.CheckboxSelectMultiple}
        labels = {"window_minutes": "Window (minutes)", "cooldown_seconds": "Cooldown (seconds)"}

    def __init__(self, *args: Any, owner_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner_id = owner_id
        self.instance.owner_id = owner_id
        self.fields["bot"].queryset = Bot.objects.filter(owner_id=owner_id).order_by("name")  # type: ignore[attr-defined]
        self.fields["bot"].empty_label = "every bot"  # type: ignore[attr-defined]
        self.fields["channels"].queryset = Channel.objects.filter(owner_id=owner_id)  # type: ignore[attr-defined]
        if self.instance.pk is None and not self.is_bound:
            # A new rule shows in the dashboard unless unticked.
            self.initial.setdefault("channels", list(Channel.objects.filter(owner_id=owner_id, kind="in_app")))
        units = "; ".join(f"{kind}: {spec.help}" for kind, spec in THRESHOLDS.items() if spec.help)
        self.fields["threshold"].help_text = units

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for field, problem in rule_problems(
            kind=data.get("kind", ""), threshold=data.get("threshold"), window_minutes=data.get("window_minutes"),
            symbol=data.get("symbol", "") or "",
        ).items():  # fmt: skip
            if field in self.fields and field not in self.errors:
                self.add_error(field, problem)
        return data
