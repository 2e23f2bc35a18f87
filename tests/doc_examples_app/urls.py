"""``/orders/``: the install guide's ``OrderViewSet``, for the testing guide's examples and the schema test."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("orders", views.OrderViewSet, basename="order")

urlpatterns = router.urls
