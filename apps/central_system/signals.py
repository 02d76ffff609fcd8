"""What the OCPP transport tells the engine beside and above it (energy receives)."""

from __future__ import annotations

from django.dispatch import Signal

#: A station opened its socket. Arguments: ``identity``, ``connector_ids``
#: (its configured connectors). What it held before it connected is unknown.
station_connected = Signal()

#: A station's socket closed. Argument: ``identity``.
station_disconnected = Signal()

#: A station was accepted at boot. Argument: ``station``. Each receiver returns
#: the commands (a list of ``commands.Command``) to send right behind the
#: BootNotification answer, before the station can start a transaction.
station_booted = Signal()
