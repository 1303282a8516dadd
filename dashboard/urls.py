from django.contrib.auth.views import LogoutView
from django.urls import path

from dashboard import alert_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.bots_page, name="bots"),
    path("bots/<int:bot_id>/", views.bot_page, name="bot"),
    path("leaderboard/", views.leaderboard_page, name="leaderboard"),
    path("alerts/", alert_views.alerts_page, name="alerts"),
    path("alerts/channels/<int:channel_id>/<str:action>/", alert_views.channel_action, name="alert-channel"),
    path("alerts/rules/<int:rule_id>/", alert_views.rule_edit, name="alert-rule"),
    path("alerts/rules/<int:rule_id>/<str:action>/", alert_views.rule_action, name="alert-rule-action"),
    path("alerts/telegram-link/", alert_views.telegram_link, name="telegram-link"),
    path("login/", views.DashboardLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("account/", views.account_page, name="account"),
    path("account/two-factor/", views.two_factor_page, name="two-factor"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password-change"),
    path("password/change/done/", views.PasswordChangeDoneView.as_view(), name="password-change-done"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path("password/reset/sent/", views.PasswordResetSentView.as_view(), name="password-reset-sent"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("password/reset/done/", views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("favicon.ico", views.FaviconView.as_view(), name="favicon"),
]
