"""Model files that ship inside installed wheels: found without importing their package (that
could start its runtime), and checked by hash, so a missing or different file is a clear error
naming the pip command. Nothing is downloaded."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path


class ModelFileError(Exception):
    """A packaged model file is missing or not the one this server was tested with."""


def packaged_file(package: str, relative_path: str, pip_install: str) -> Path:
    """Where the installed `package` keeps `relative_path`."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(f"{package} is not installed: {pip_install}")
    return Path(next(iter(spec.submodule_search_locations))) / relative_path


def read_verified(path: Path, sha256: str, what: str, pip_install: str) -> bytes:
    """The file's bytes, refused unless their sha256 is `sha256` (the bytes checked are the
    bytes loaded). `what` names the model in the message."""
    try:
        model = path.read_bytes()
    except OSError:
        raise ModelFileError(f"{what} is missing ({path}): {pip_install}") from None
    digest = hashlib.sha256(model).hexdigest()
    if digest != sha256:
        raise ModelFileError(
            f"{what} at {path} has sha256 {digest[:12]}…, expected {sha256[:12]}…; "
            f"reinstall it: {pip_install} --force-reinstall"
        )
    return model
