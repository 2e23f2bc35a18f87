from django.urls import path
from rest_framework.routers import SimpleRouter

from drf_m2m_auth.permissions import HasScopes

from . import views

router = SimpleRouter()
router.register("data", views.DataViewSet, basename="data")

urlpatterns = [
    path("echo/", views.Echo.as_view()),
    path("echo-basic/", views.EchoWithBasic.as_view()),
    path("or-allow/", views.scoped(HasScopes | views.Allow)),
    path("allow-or/", views.scoped(views.Allow | HasScopes)),
    path("deny-or/", views.scoped(views.Deny | HasScopes)),
    path("and-allow/", views.scoped(HasScopes & views.Allow)),
    path("not/", views.scoped(~HasScopes)),
    *router.urls,
]
