"""Signal receivers of the alerts app.

- A new account gets its in-app channel and the default alert rules.
- Ending a login ends its live streams: logout, deactivation and deletion close the WebSockets
  opened with them (the consumers in `alerts.consumers`, through `alerts.realtime`).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest

from alerts import realtime


@receiver(post_save, sender=get_user_model(), dispatch_uid="alerts.defaults_for_new_user")
def defaults_for_new_user(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        from alerts.services import defaults_create

        defaults_create(owner_id=instance.pk)


@receiver(user_logged_out, dispatch_uid="alerts.close_streams_of_session")
def close_streams_of_session(sender: Any, request: HttpRequest, **kwargs: Any) -> None:
    # Sent before the session is flushed, so its key still names the streams it opened.
    session_key = request.session.session_key
    if session_key:
        realtime.revoke_session(session_key)


@receiver(post_save, sender=get_user_model(), dispatch_uid="alerts.close_streams_of_inactive_user")
def close_streams_of_inactive_user(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and not instance.is_active:
        realtime.revoke_account(instance.pk)


@receiver(post_delete, sender=get_user_model(), dispatch_uid="alerts.close_streams_of_deleted_user")
def close_streams_of_deleted_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    realtime.revoke_account(instance.pk)
