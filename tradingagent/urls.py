"""URL map: the admin, the API under /api/ (schema and docs included) and the dashboard."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView

from tradingagent import auth_api
from tradingagent.api_docs import RedocView, SwaggerView
from tradingagent.api_index import ApiIndexView

api_patterns: list[URLPattern | URLResolver] = [
    path("", ApiIndexView.as_view(), name="index"),
    path("auth/register/", auth_api.RegisterView.as_view(), name="register"),
    path("auth/token/", auth_api.TokenObtainView.as_view(), name="token"),
    path("auth/token/refresh/", auth_api.TokenRefreshThrottledView.as_view(), name="token-refresh"),
    path("auth/logout/", auth_api.LogoutView.as_view(), name="logout"),
    path("auth/password/change/", auth_api.PasswordChangeView.as_view(), name="password-change"),
    path("auth/password/reset/", auth_api.PasswordResetView.as_view(), name="password-reset"),
    path("auth/password/reset/confirm/", auth_api.PasswordResetConfirmView.as_view(), name="password-reset-confirm"),
    path("auth/me/", auth_api.MeView.as_view(), name="me"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", RedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include("bots.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("alerts.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include((api_patterns, "api"), namespace="api")),
    path("", include("dashboard.urls")),
]

# Unknown /api/ paths and server errors answer in the API's one error format (unknown /api/ paths
# under DEBUG too: core.api.NotFoundMiddleware).
handler400 = "core.api.handler400"
handler404 = "core.api.handler404"
handler500 = "core.api.handler500"
