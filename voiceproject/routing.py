"""WebSocket routes; every socket lives under /ws/.

Browser sockets must come from an allowed origin (which also keeps other sites from using an
operator's login cookie on the watch socket). ACS's media socket is opened by a server,
which sends no Origin header: it is authenticated by ACS's signed token instead.
"""

from channels.auth import AuthMiddlewareStack
from django.urls import path, re_path

from sessions_app.consumers import (
    AcsMediaConsumer,
    StreamConsumer,
    UnroutedConsumer,
    WatchConsumer,
)

browser_websocket_urlpatterns = [
    path("ws/sessions/<uuid:session_id>/", StreamConsumer.as_asgi()),
    # Operators watch: their login (the session cookie) must reach the consumer.
    path("ws/sessions/<uuid:session_id>/watch/", AuthMiddlewareStack(WatchConsumer.as_asgi())),
    re_path(r"", UnroutedConsumer.as_asgi()),  # anything else: closed with 4404
]

acs_websocket_urlpatterns = [
    path("ws/acs/<uuid:session_id>/", AcsMediaConsumer.as_asgi()),
]
