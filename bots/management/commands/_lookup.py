from __future__ import annotations

from django.core.management.base import CommandError

from bots.models import Bot


def find_bot(ref: str) -> Bot:
    """A bot by id or by name (names are unique per owner; an ambiguous name is an error)."""
    if ref.isascii() and ref.isdigit():  # "²" is a digit to str.isdigit, not to int()
        bot = Bot.objects.filter(pk=int(ref)).first()
        if bot is not None:
            return bot
    matches = list(Bot.objects.filter(name=ref)[:2])
    if not matches:
        raise CommandError(f"no bot with id or name {ref!r}")
    if len(matches) > 1:
        raise CommandError(f"several bots are named {ref!r}; use the id")
    return matches[0]
