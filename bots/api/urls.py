from django.urls import path
from rest_framework.routers import SimpleRouter

from bots.api import views

router = SimpleRouter()
router.register("bots", views.BotViewSet, basename="bot")
router.register("cycles", views.CycleViewSet, basename="cycle")

urlpatterns = [
    path("leaderboard/", views.LeaderboardView.as_view(), name="leaderboard"),
    path("analytics/", views.AnalyticsView.as_view(), name="analytics"),
    path("arena/", views.ArenaView.as_view(), name="arena"),
    path("catalog/", views.CatalogView.as_view(), name="catalog"),
    *router.urls,
]
