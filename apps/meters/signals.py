"""What the meters tell the layers above them (``receivers.py`` there connects)."""

from __future__ import annotations

from django.dispatch import Signal

#: A polling round saw a zone meter depart from what the last allocation used
#: (a new reading, a loss or a recovery): the load manager should look again.
#: Sent once per round, without arguments, from the polling worker.
meter_state_changed = Signal()

#: The meters of one polling period were read; other Modbus devices polled on
#: the same period (the zones' external inputs) are read now, in the same slot.
#: Sent without arguments, in the polling worker; receivers run synchronously.
meters_polled = Signal()
