from django.urls import path

from sessions_app import api
from sessions_app.acs import views as acs
from sessions_app.dashboard import DashboardView
from sessions_app.metrics_view import metrics

urlpatterns = [
    path("", DashboardView.as_view(), name="dashboard"),
    path("health", api.health, name="health"),
    path("metrics", metrics, name="metrics"),
    path("api/agents", api.agents, name="agents"),
    path("api/sessions", api.sessions, name="sessions"),
    path("api/sessions/<str:session_id>", api.session_detail, name="session-detail"),
    path("api/sessions/<str:session_id>/end", api.session_end, name="session-end"),
    path(
        "api/sessions/<str:session_id>/recording", api.session_recording, name="session-recording"
    ),
    path(
        "api/sessions/<str:session_id>/interrupt", api.session_interrupt, name="session-interrupt"
    ),
    path("acs/events", acs.incoming_events, name="acs-events"),
    path("acs/callbacks/<str:session_id>", acs.call_callbacks, name="acs-callbacks"),
]
