from rest_framework.routers import SimpleRouter

from .views import DataViewSet

router = SimpleRouter()
router.register("data", DataViewSet, basename="data")

urlpatterns = router.urls
