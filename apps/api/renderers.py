"""CSV answers (exports, ``?format=csv``) beside JSON."""

from __future__ import annotations

import json

from rest_framework.renderers import BaseRenderer


class CsvRenderer(BaseRenderer):
    """Lets a client ask for ``text/csv``; the view streams the file itself.

    Anything else reaching it (an error body) is written as JSON.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if isinstance(data, bytes | str):
            return data
        return json.dumps(data).encode()
