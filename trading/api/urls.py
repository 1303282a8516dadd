from rest_framework.routers import SimpleRouter

from trading.api import views

router = SimpleRouter()
router.register("positions", views.PositionViewSet, basename="position")
router.register("orders", views.OrderViewSet, basename="order")
router.register("fills", views.FillViewSet, basename="fill")
router.register("round-trips", views.RoundTripViewSet, basename="round-trip")
router.register("exchange-accounts", views.ExchangeAccountViewSet, basename="exchange-account")

urlpatterns = router.urls
