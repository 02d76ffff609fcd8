"""What the zones tell the layers above them (``receivers.py`` there connects)."""

from __future__ import annotations

from django.dispatch import Signal

#: A limit on zones changed outside their configuration: an external input
#: switched, or a building-management reduction was set or cleared. Sent after
#: the transaction commits, with ``reason`` ("input" or "reduction").
zone_limits_changed = Signal()
