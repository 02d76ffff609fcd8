"""What the stations tell the layers above them (``receivers.py`` there connects)."""

from __future__ import annotations

from django.dispatch import Signal

#: An operator installed, refused or deleted a station. Sent after the
#: transaction commits, with ``identity`` and ``change`` ("installed",
#: "refused" or "deleted"); the OCPP transport tells the station's connection.
station_state_changed = Signal()

#: A station reported something the pages show: a status (``what="status"``)
#: or meter values (``what="meter_values"``). Sent after the transaction
#: commits, with ``identity`` and ``what``.
station_reported = Signal()
