"""What the load manager tells the interfaces above it (``receivers.py`` there connects)."""

from __future__ import annotations

from django.dispatch import Signal

#: A control-loop run stored its results: setpoints with their reasons and the
#: zones' figures (what the UI and the API show). Sent without arguments, in
#: the process that ran the loop, once the results are in the hot state.
allocation_stored = Signal()
