"""WebSocket routes; every socket lives under /ws/."""

from django.urls import path

from sessions_app.consumers import StreamConsumer

websocket_urlpatterns = [
    path("ws/sessions/<uuid:session_id>/", StreamConsumer.as_asgi()),
]
