"""What the authentication data tells the rest of evce when it changes.

Both signals are sent once per service call, after the transaction commits, so
a receiver never sees a change that is later rolled back and may safely queue
work that reads the database. Receivers should recompute what they need from
the database (the arguments say *where* to look, not what the new state is),
which makes a repeated or merged notification harmless.
"""

from __future__ import annotations

from django.dispatch import Signal

#: Cards were created, edited, deleted, moved between groups or imported.
#: Arguments: ``card_ids`` (frozenset[int], including deleted cards),
#: ``id_tags`` (frozenset[str], every tag whose local-list entry may have
#: changed, including the old tag of a renamed card and the tags of deleted
#: cards) and ``group_ids`` (frozenset[int], the groups whose stations hold
#: such entries). The local authorisation list sync (differential
#: ``SendLocalList``) subscribes here.
cards_changed = Signal()

#: Authentication groups were created, edited (modes, plug-in tag) or deleted,
#: or stations moved between groups. Arguments: ``group_ids`` (frozenset[int])
#: and ``station_ids`` (frozenset[int], the stations whose OCPP configuration
#: and local list must be checked again).
auth_groups_changed = Signal()
