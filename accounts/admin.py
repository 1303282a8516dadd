"""The admin's users: Django's user admin, but a user whose bots have books is not deleted.

The books are append-only (bots.ledger_guards): deleting such a user would have to delete their
bots' history, which the database refuses anyway. The admin says so up front, once, instead of
listing every protected row: deactivate the user instead. The same holds for "delete selected".
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from bots import rules

User = get_user_model()


class BooksAwareUserAdmin(UserAdmin):  # type: ignore[type-arg]
    actions = ["delete_selected_users"]

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        user = self.get_object(request, object_id)
        problem = rules.user_delete_problem(user_id=user.pk) if user is not None else ""
        if user is not None and problem:
            self.message_user(request, f"{user} was not deleted: {problem}.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:auth_user_change", args=[user.pk]))
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # replaced by the checked action below
        if not self.has_delete_permission(request):
            actions.pop("delete_selected_users", None)
        return actions

    @admin.action(description="Delete selected users (those without books)")
    def delete_selected_users(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        kept = [user for user in queryset if rules.user_delete_problem(user_id=user.pk)]
        if kept:
            names = ", ".join(str(user) for user in kept[:10])
            self.message_user(
                request,
                f"Nothing was deleted: {names} {'has' if len(kept) == 1 else 'have'} bots with trading history "
                "and the books are append-only; deactivate them instead (untick Active).",
                messages.ERROR,
            )
            return None
        return delete_selected(self, request, queryset)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, BooksAwareUserAdmin)
