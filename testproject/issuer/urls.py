"""Mounted at the issuer's base path (``issuer/`` in the test project), mirroring Auth0's tenant URLs."""

from django.urls import path

from . import views

app_name = "issuer"

urlpatterns = [
    path("", views.index, name="index"),
    path("oauth/token", views.token, name="token"),
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path("statuslists/<int:number>", views.status_list, name="status-list"),
    path(".well-known/openid-configuration", views.discovery, name="openid-configuration"),
    path(".well-known/oauth-authorization-server", views.discovery, name="oauth-authorization-server"),
]
