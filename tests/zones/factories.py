from datetime import time, timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.zones.models import EbmsReduction, ExternalInput, InputKind, TouPeriod, TouSlot, Zone


class ZoneFactory(DjangoModelFactory):
    class Meta:
        model = Zone

    name = factory.Sequence(lambda n: f"Zone {n}")
    parent = None
    max_current_a = Decimal("100")


class TouPeriodFactory(DjangoModelFactory):
    class Meta:
        model = TouPeriod

    name = factory.Sequence(lambda n: f"Period {n}")
    days = factory.LazyFunction(lambda: ["mon", "tue", "wed", "thu", "fri"])
    max_percent = 60


class TouSlotFactory(DjangoModelFactory):
    class Meta:
        model = TouSlot

    period = factory.SubFactory(TouPeriodFactory)
    start = time(7, 0)
    end = time(10, 0)


class ExternalInputFactory(DjangoModelFactory):
    class Meta:
        model = ExternalInput

    number = factory.Sequence(lambda n: n % 3 + 1)
    name = factory.Sequence(lambda n: f"Input {n}")
    percent = 50
    kind = InputKind.API


class EbmsReductionFactory(DjangoModelFactory):
    class Meta:
        model = EbmsReduction

    zone = factory.SubFactory(ZoneFactory)
    percent = Decimal("50")
    current_a = None
    created_at = factory.LazyFunction(timezone.now)
    valid_until = factory.LazyAttribute(lambda r: r.created_at + timedelta(hours=1))
