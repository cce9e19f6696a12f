"""The collector is tuned once the application is loaded (voiceproject.interpreter)."""

from __future__ import annotations

import gc
import sys

from voiceproject.interpreter import (
    SWITCH_INTERVAL_S,
    YOUNG_GENERATION_THRESHOLD,
    tune_for_serving,
)


def test_the_loaded_application_is_frozen_out_of_scans_and_the_young_generation_grows():
    """The routed application (imported by the test settings' ASGI module) has run it."""
    import voiceproject.asgi  # noqa: F401

    assert gc.get_freeze_count() > 10_000  # Django, channels, the SDKs: never scanned again
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
    assert sys.getswitchinterval() == SWITCH_INTERVAL_S


def test_tuning_again_freezes_what_exists_now_and_keeps_the_older_thresholds():
    _, older, oldest = gc.get_threshold()
    before = gc.get_freeze_count()
    kept = [[index] for index in range(1000)]  # new long-lived containers

    tune_for_serving()

    assert gc.get_freeze_count() >= before + len(kept)
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, older, oldest)
