"""What a connector may be drawing now, from what its station is known to hold.

A setpoint is not in force because evce sent it: a station may refuse a
profile, answer too late or not at all, and an EV takes a few seconds to
follow a decrease. Each *profile slot* of a connector (its live ``TxProfile``
for one transaction, its fallback ``TxDefaultProfile``) therefore keeps every
value that may be in force, each with the moment it stops being possible:

- a value being sent counts at once (the station may apply it before it
  answers) and stays possible until a later value is accepted;
- an accepted value replaces the others, which stay possible for the EV's
  response time (IEC 61851 gives an EV 5 s to follow a lower limit);
- a refused value is dropped (the station kept what it had);
- an unanswered value stays possible, with everything before it.

A slot whose content is unknown (never confirmed since the station connected)
holds the connector's maximum. The slot's envelope at an instant is the
highest value still possible then; a connector's envelope is the higher of its
fallback's and its live slot's (a live profile can lapse or its transaction
end, and the fallback is what the station then applies).

Pure: times are passed in, values are amps per phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FOREVER = None
"""``until_s`` of a value that stays possible until another value is accepted."""

CLOCK_SKEW_S = 60.0
"""How far behind a station's clock may be: a lapsed live profile counts this much longer."""


@dataclass(frozen=True, slots=True)
class Slot:
    """The values one profile slot may hold, and what evce last asked of it.

    - ``items``: ``(value_a, until_s)`` pairs; ``until_s`` ``None`` = until replaced.
    - ``confirmed_a``: the value last accepted (``None``: never, or unknown since
      the station connected).
    - ``attempt_a``: the value last sent; ``held`` is true when that attempt was
      refused or unanswered, or the slot is unknown: the envelope cannot be
      counted on to come down by itself, so the load manager budgets it as it is.
      ``attempt_at_s``: when that value was sent.
    """

    items: tuple[tuple[float, float | None], ...] = ()
    confirmed_a: float | None = None
    attempt_a: float | None = None
    held: bool = False
    attempt_at_s: float | None = None

    @classmethod
    def unknown(cls, max_a: float, attempt_a: float | None = None) -> Slot:
        """A slot whose content nobody knows: it may let the EV draw ``max_a``."""
        return cls(items=((max_a, FOREVER),), attempt_a=attempt_a, held=True)

    def at(self, now_s: float) -> float:
        """The highest value that may be in force at ``now_s`` (0 for an empty slot)."""
        highest = 0.0
        for value_a, until_s in self.items:
            if (until_s is None or now_s < until_s) and value_a > highest:
                highest = value_a
        return highest

    def lowest_at(self, now_s: float) -> float:
        """The lowest value that may be in force at ``now_s`` (0 for an empty slot)."""
        values = [v for v, until_s in self.items if until_s is None or now_s < until_s]
        return min(values, default=0.0)

    def settled_a(self) -> float:
        """The envelope once every response time has run out: what no longer expires.

        A value at or below the envelope *now* may still raise it for later,
        when it is only that high because an older value lingers: sending it is
        a raise unless it is within this.
        """
        return max((value_a for value_a, until_s in self.items if until_s is None), default=0.0)

    def released_at(self, now_s: float) -> float | None:
        """When the envelope next comes down by itself (a response time ending), if ever."""
        ends = [until for _value, until in self.items if until is not None and until > now_s]
        return min(ends) if ends else None

    def sending(self, value_a: float, *, at_s: float) -> Slot:
        """``value_a`` is about to be sent: from now on the station may apply it."""
        return Slot(
            items=(*self.items, (value_a, FOREVER)),
            confirmed_a=self.confirmed_a,
            attempt_a=value_a,
            held=self.held,
            attempt_at_s=at_s,
        )

    def accepted(self, value_a: float, *, at_s: float, response_s: float) -> Slot:
        """The station accepted ``value_a`` at ``at_s``: the rest lasts ``response_s`` more."""
        release_s = at_s + response_s
        kept = tuple(
            (old_a, release_s if until_s is None else min(until_s, release_s))
            for old_a, until_s in self.items
            if old_a > value_a and (until_s is None or until_s > at_s)
        )
        return Slot(
            items=((value_a, FOREVER), *kept),
            confirmed_a=value_a,
            attempt_a=value_a,
            held=False,
            attempt_at_s=self.attempt_at_s,
        )

    def refused(self, value_a: float) -> Slot:
        """The station refused ``value_a``: it keeps what it had, and will likely refuse again."""
        items = list(self.items)
        if (value_a, FOREVER) in items:
            items.remove((value_a, FOREVER))
        # A refused decrease leaves the connector above what evce wants: held.
        # A refused increase leaves it where it was, which evce already counts.
        lowering = any(old_a > value_a for old_a, _until in items)
        return Slot(
            items=tuple(items),
            confirmed_a=self.confirmed_a,
            attempt_a=value_a,
            held=self.held or lowering,
            attempt_at_s=self.attempt_at_s,
        )

    def unanswered(self, value_a: float) -> Slot:
        """No answer for ``value_a``: it may or may not be in force; both stay possible."""
        return Slot(
            items=self.items,
            confirmed_a=self.confirmed_a,
            attempt_a=value_a,
            held=True,
            attempt_at_s=self.attempt_at_s,
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "items": [[value_a, until_s] for value_a, until_s in self.items],
            "confirmed_a": self.confirmed_a,
            "attempt_a": self.attempt_a,
            "held": self.held,
            "attempt_at_s": self.attempt_at_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Slot:
        """Rebuild a slot stored with :meth:`as_dict`."""
        return cls(
            items=tuple(
                (float(value_a), None if until_s is None else float(until_s))
                for value_a, until_s in data.get("items", ())
            ),
            confirmed_a=None if data.get("confirmed_a") is None else float(data["confirmed_a"]),
            attempt_a=None if data.get("attempt_a") is None else float(data["attempt_a"]),
            held=bool(data.get("held", False)),
            attempt_at_s=None if data.get("attempt_at_s") is None else float(data["attempt_at_s"]),
        )


@dataclass(frozen=True, slots=True)
class ConnectorProfiles:
    """Both profile slots of a connector.

    ``live_transaction_id`` is the transaction the live slot belongs to (a
    ``TxProfile`` only applies to it); ``None`` with a live slot means "any":
    after a reconnection nobody knows which transaction a profile left on the
    station belongs to. ``live_valid_until_s`` is the end of the last live
    profile's validity (``None``: unknown); a minute later, whatever the
    station's clock, it no longer applies.
    """

    fallback: Slot
    live: Slot | None = None
    live_transaction_id: int | None = None
    live_valid_until_s: float | None = None

    def live_for(self, transaction_id: int | None, now_s: float) -> Slot | None:
        """The live slot if it may apply to ``transaction_id`` at ``now_s``."""
        if self.live is None:
            return None
        if self.live_valid_until_s is not None and now_s > self.live_valid_until_s + CLOCK_SKEW_S:
            return None
        if self.live_transaction_id is None or self.live_transaction_id == transaction_id:
            return self.live
        return None

    def envelope_a(self, now_s: float, transaction_id: int | None) -> float:
        """The most the connector may draw at ``now_s`` (per phase, A)."""
        live = self.live_for(transaction_id, now_s)
        fallback_a = self.fallback.at(now_s)
        return max(fallback_a, live.at(now_s)) if live is not None else fallback_a

    def lowest_a(self, now_s: float, transaction_id: int | None) -> float:
        """The lowest limit the connector may be on at ``now_s``: its EV may draw that little.

        A sample above it may predate it, so a meter reading counts the EV at
        no more than this (its live profile may also have lapsed: the lower of
        both slots).
        """
        live = self.live_for(transaction_id, now_s)
        fallback_a = self.fallback.lowest_at(now_s)
        return min(fallback_a, live.lowest_at(now_s)) if live is not None else fallback_a

    def following_a(self, now_s: float, transaction_id: int | None) -> float:
        """The lowest limit its EV may be following now: the live profile's while one applies.

        What a raise makes the EV ramp up from. Unlike :meth:`lowest_a`, a live
        profile is taken to apply while it may: this is not a cap on a sample.
        """
        live = self.live_for(transaction_id, now_s)
        return live.lowest_at(now_s) if live is not None else self.fallback.lowest_at(now_s)

    def settled_a(self, now_s: float, transaction_id: int | None) -> float:
        """The envelope once every response time has run out (see :meth:`Slot.settled_a`)."""
        live = self.live_for(transaction_id, now_s)
        fallback_a = self.fallback.settled_a()
        return max(fallback_a, live.settled_a()) if live is not None else fallback_a

    def held(self, transaction_id: int | None, now_s: float) -> bool:
        """True when a slot that applies cannot be counted on to follow evce (see :class:`Slot`)."""
        live = self.live_for(transaction_id, now_s)
        return self.fallback.held or (live is not None and live.held)

    def released_at(self, now_s: float, transaction_id: int | None) -> float | None:
        """When the envelope may next come down by itself."""
        live = self.live_for(transaction_id, now_s)
        ends = [
            at
            for at in (
                self.fallback.released_at(now_s),
                live.released_at(now_s) if live is not None else None,
            )
            if at is not None
        ]
        return min(ends) if ends else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "fallback": self.fallback.as_dict(),
            "live": None if self.live is None else self.live.as_dict(),
            "live_transaction_id": self.live_transaction_id,
            "live_valid_until_s": self.live_valid_until_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConnectorProfiles:
        """Rebuild profiles stored with :meth:`as_dict`."""
        live = data.get("live")
        return cls(
            fallback=Slot.from_dict(data["fallback"]),
            live=None if live is None else Slot.from_dict(live),
            live_transaction_id=data.get("live_transaction_id"),
            live_valid_until_s=data.get("live_valid_until_s"),
        )

    @classmethod
    def unknown(
        cls,
        max_a: float,
        *,
        fallback_attempt_a: float | None = None,
        live_attempt_a: float | None = None,
    ) -> ConnectorProfiles:
        """A station that has just connected: it may hold anything up to ``max_a``."""
        return cls(
            fallback=Slot.unknown(max_a, fallback_attempt_a),
            live=Slot.unknown(max_a, live_attempt_a),
            live_transaction_id=None,
        )
