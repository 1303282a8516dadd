"""`GET /api/`: links to the docs, the auth endpoints and every collection."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

# Name in the answer → URL name in the `api` namespace. tests/api/test_errors.py checks that every
# top-level path of the schema is here.
LINKS = {
    "schema": "schema",
    "docs": "docs",
    "redoc": "redoc",
    "register": "register",
    "token": "token",
    "token_refresh": "token-refresh",
    "me": "me",
    "bots": "bot-list",
    "cycles": "cycle-list",
    "leaderboard": "leaderboard",
    "analytics": "analytics",
    "arena": "arena",
    "catalog": "catalog",
    "positions": "position-list",
    "orders": "order-list",
    "fills": "fill-list",
    "round_trips": "round-trip-list",
    "exchange_accounts": "exchange-account-list",
    "alerts": "alert-list",
}


class ApiIndexView(APIView):
    """Where to start: open without authentication, like the docs it links."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(exclude=True)  # navigation, like the schema and docs views
    def get(self, request: Request) -> Response:
        return Response({name: reverse(f"api:{url_name}", request=request) for name, url_name in LINKS.items()})
