"""Fixtures the unit tests of voice detection share: one Silero model per module, and a
batcher of their own per test (its counters start at zero; its thread stops after)."""

from __future__ import annotations

import pytest

from agents_app.speech.silero import SileroBatcher, SileroModel, load_model_bytes


@pytest.fixture(scope="module")
def model() -> SileroModel:
    return SileroModel(load_model_bytes())


@pytest.fixture
def batcher(model):
    batcher = SileroBatcher(model)
    yield batcher
    batcher.close()
