"""WebSocket URL routes, mounted by tradingagent.asgi behind the session middleware."""

from django.urls import URLPattern, path, re_path

from alerts.consumers import BotStreamConsumer, UnknownPathConsumer, UserStreamConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/stream/", UserStreamConsumer.as_asgi(), name="ws-user-stream"),
    path("ws/bots/<int:bot_id>/", BotStreamConsumer.as_asgi(), name="ws-bot-stream"),
    re_path(r"", UnknownPathConsumer.as_asgi()),  # last: every other path
]
