"""HTTP routes: dashboard, REST API, health, admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("sessions_app.urls")),
]
