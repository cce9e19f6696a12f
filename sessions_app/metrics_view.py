"""GET /metrics: this process's Prometheus metrics (voiceproject/metrics.py), to operators.

Who may read them is the REST API's rule for reading sessions (an operator with
view_session, by login or API token): the figures name error codes and engines, and how
busy the server is.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from sessions_app.access import principal_for
from sessions_app.api import api_view
from sessions_app.loop_lag import lag_monitor


@api_view("GET")
async def metrics(request: HttpRequest) -> HttpResponse:
    await (await principal_for(request)).require("view_session")
    lag_monitor.ensure_running()  # a process serving no session yet still reports its loop
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
