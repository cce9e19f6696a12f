"""A stored recording streamed to an operator, read off the event loop in chunks: a long
call's WAV never sits whole in memory (Django would buffer a synchronous file iterator)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse

CHUNK_BYTES = 256 * 1024


async def _chunks(name: str) -> AsyncIterator[bytes]:
    stored = await asyncio.to_thread(default_storage.open, name, "rb")
    try:
        while chunk := await asyncio.to_thread(stored.read, CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(stored.close)


async def recording_response(name: str, filename: str) -> StreamingHttpResponse:
    """The recording `name` as a WAV download called `filename`; OSError if it is gone."""
    size = await asyncio.to_thread(default_storage.size, name)
    response = StreamingHttpResponse(_chunks(name), content_type="audio/wav")
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
