"""What the supervision configuration tells the rest of evce when it changes."""

from __future__ import annotations

from django.dispatch import Signal

#: Supervisions, their group assignments or stations' CPO passwords changed
#: (sent once per service call, after commit). Arguments: ``supervision_ids``
#: (frozenset[int], including deleted ones). The relay re-reads what it serves.
supervision_changed = Signal()
