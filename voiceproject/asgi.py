"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproject.settings")
django_asgi_app = get_asgi_application()

# Routing imports models, so it comes after Django is set up.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from agents_app.speech.stt import warm_up_recognizer  # noqa: E402
from agents_app.speech.turn import warm_up_turn_model  # noqa: E402
from sessions_app.vad import VoiceDetection  # noqa: E402
from voiceproject.access_log import mask_daphne_access_log  # noqa: E402
from voiceproject.interpreter import tune_for_serving  # noqa: E402
from voiceproject.routing import (  # noqa: E402
    acs_websocket_urlpatterns,
    browser_websocket_urlpatterns,
)
from voiceproject.static_files import StaticFilesHandler  # noqa: E402

mask_daphne_access_log()  # `daphne voiceproject.asgi:application` logs every request's path

http_app = StaticFilesHandler(django_asgi_app) if settings.SERVE_STATIC else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": URLRouter(
            [
                *acs_websocket_urlpatterns,
                re_path(
                    r"^", AllowedHostsOriginValidator(URLRouter(browser_websocket_urlpatterns))
                ),
            ]
        ),
    }
)

# A server loads its speech models while it starts, not when its first caller speaks.
warm_up_recognizer(settings.STT_ENGINE)
warm_up_turn_model(settings.TURN_MODEL)
VoiceDetection.from_settings().warm_up()
tune_for_serving()  # last: what start-up made is frozen out of the collector's scans
