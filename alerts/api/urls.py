from rest_framework.routers import SimpleRouter

from alerts.api import views

router = SimpleRouter()
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("alert-rules", views.AlertRuleViewSet, basename="alert-rule")
router.register("alert-channels", views.ChannelViewSet, basename="alert-channel")
router.register("alert-deliveries", views.DeliveryViewSet, basename="alert-delivery")

urlpatterns = router.urls
