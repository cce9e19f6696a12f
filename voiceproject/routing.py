"""WebSocket routes; every socket lives under /ws/."""

from django.urls import path

from sessions_app.consumers import AcsMediaConsumer, StreamConsumer, WatchConsumer

websocket_urlpatterns = [
    path("ws/sessions/<uuid:session_id>/", StreamConsumer.as_asgi()),
    path("ws/sessions/<uuid:session_id>/watch/", WatchConsumer.as_asgi()),
    path("ws/acs/<uuid:session_id>/", AcsMediaConsumer.as_asgi()),
]
