"""The dashboard page. Its talk panel is for anyone; its operator panels (the session list,
showing and watching sessions, Interrupt and End of a watched call) for operators, whom the
page tells apart so that it can ask everyone else to log in."""

from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from sessions_app.access import is_operator


class DashboardView(TemplateView):
    template_name = "dashboard.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = self.request.user
        operator = is_operator(user)
        return {
            **super().get_context_data(**kwargs),
            "can_view_sessions": operator and user.has_perm("sessions_app.view_session"),
            "can_control_sessions": operator and user.has_perm("sessions_app.change_session"),
        }
