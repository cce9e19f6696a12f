"""The garbage collector, tuned for a server whose callers hear its pauses.

CPython's cyclic collector stops the event loop while it scans. A started server holds a few
hundred thousand objects that live as long as it does (Django, the SDKs, models' wrappers);
with the default thresholds a full collection scanned them all every few seconds under load:
90-560 ms pauses at 200 sessions (bench/load.py with a gc.callbacks probe), every caller's
audio stalled meanwhile, and the young generation was collected ~20 times a second. So, once
the application is loaded: freeze what exists (those objects are never scanned again) and let
the young generation grow larger between collections (most of what a frame allocates dies
young without the collector's help: reference counting frees it).
"""

from __future__ import annotations

import gc

# Tracked objects allocated (net of those freed) before a young-generation collection; the
# default is 700. The older generations keep their defaults.
YOUNG_GENERATION_THRESHOLD = 10_000


def tune_for_serving() -> None:
    """Call once the application is loaded, before it serves."""
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
