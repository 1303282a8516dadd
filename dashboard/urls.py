from django.contrib.auth.views import LogoutView
from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.bots_page, name="bots"),
    path("bots/<int:bot_id>/", views.bot_page, name="bot"),
    path("leaderboard/", views.leaderboard_page, name="leaderboard"),
    path("login/", views.DashboardLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("favicon.ico", views.FaviconView.as_view(), name="favicon"),
]
