"""The interpreter, tuned for a server whose callers hear its pauses.

Two of CPython's defaults stall the event loop under load (bench/load.py, 200 sessions):

- The cyclic garbage collector stops the loop while it scans. A started server holds a few
  hundred thousand objects that live as long as it does (Django, the SDKs, models' wrappers);
  with the default thresholds a full collection scanned them all every few seconds: 90-560 ms
  pauses (measured with a gc.callbacks probe), every caller's audio stalled meanwhile, and the
  young generation was collected ~20 times a second. So, once the application is loaded, what
  exists is frozen (never scanned again) and the young generation grows larger between
  collections (most of what a frame allocates is freed by reference counting anyway).
- The GIL's switch interval (5 ms): the threads beside the loop (Silero's batcher, the
  database's, Whisper's) each wait up to that long for the GIL before their next step, twice
  per voice-detection batch, while every speaking caller's detector waits on that batch. At
  1 ms the loop's lag at 200 sessions fell from p50 15-26 / p99 75-260 ms to p50 6 / p99 37.
"""

from __future__ import annotations

import gc
import sys

# Tracked objects allocated (net of those freed) before a young-generation collection; the
# default is 700. The older generations keep their defaults.
YOUNG_GENERATION_THRESHOLD = 10_000
# Seconds a thread holding the GIL runs before one waiting for it is let in (default 0.005).
SWITCH_INTERVAL_S = 0.001


def tune_for_serving() -> None:
    """Call once the application is loaded, before it serves."""
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
