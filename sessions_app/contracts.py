"""Loads the JSON Schemas in contracts/ into validators that resolve each other's $refs."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

CONTRACTS_DIR = Path(settings.BASE_DIR) / "contracts"


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(CONTRACTS_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def schema_names() -> list[str]:
    return sorted(
        path.name.removesuffix(".schema.json") for path in CONTRACTS_DIR.glob("*.schema.json")
    )


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for `contracts/<name>.schema.json`, e.g. `validator("stream-event")`."""
    schema = json.loads((CONTRACTS_DIR / f"{name}.schema.json").read_text())
    return Draft202012Validator(schema, registry=_registry())
