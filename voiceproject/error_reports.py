"""Debug pages and error reports that show no credential (DEFAULT_EXCEPTION_REPORTER[_FILTER]).

Django hides settings whose names look secret; ours do not all look it (ACS_CONNECTION_STRING,
REDIS_URL and the channel layer's hosts carry keys and passwords), and the page shows the
request's URL and GET parameters as they came (`/acs/events?secret=…`). The filter widens
what is hidden; the reporter masks what is left in the page it renders.
"""

from __future__ import annotations

import re

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from voiceproject.credentials import mask_credentials


class CredentialMaskingFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CONNECTION_STRING|REDIS_URL"
        "|DATABASE_URL|CREDENTIAL",
        flags=re.I,
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        return mask_credentials(cleansed) if isinstance(cleansed, str) else cleansed

    def get_safe_request_meta(self, request):
        return {
            key: mask_credentials(value) if isinstance(value, str) else value
            for key, value in super().get_safe_request_meta(request).items()
        }


class CredentialMaskingReporter(ExceptionReporter):
    def get_traceback_data(self):
        data = super().get_traceback_data()
        if self.request is not None:
            data["request_GET_items"] = [
                (key, self.filter.cleanse_setting(key, value))
                for key, value in self.request.GET.items()
            ]
            data["request_insecure_uri"] = mask_credentials(data["request_insecure_uri"])
        return data

    def get_traceback_html(self) -> str:
        return mask_credentials(super().get_traceback_html())

    def get_traceback_text(self) -> str:
        return mask_credentials(super().get_traceback_text())
