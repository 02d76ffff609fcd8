"""Streamed downloads that stay streamed (and in flat memory) under ASGI as under WSGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse

# Text handed to the event loop per trip to the database thread (at least one chunk).
CHARS_PER_TRIP = 64 * 1024


def _take(chunks: Iterator[str], max_chars: int) -> str:
    taken: list[str] = []
    size = 0
    for chunk in chunks:
        taken.append(chunk)
        size += len(chunk)
        if size >= max_chars:
            break
    return "".join(taken)


async def _async_chunks(chunks: Iterator[str]) -> AsyncIterator[str]:
    # Django's ASGI handler would read a synchronous iterator into a list before
    # sending a byte; pulled from the sync thread a little at a time, the file
    # starts at once and never sits whole in memory.
    take = sync_to_async(_take, thread_sensitive=True)
    while text := await take(chunks, CHARS_PER_TRIP):
        yield text


def csv_download(request, chunks: Iterator[str], filename: str) -> StreamingHttpResponse:
    """Stream ``chunks`` (text) as a CSV attachment called ``filename``."""
    content = _async_chunks(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
