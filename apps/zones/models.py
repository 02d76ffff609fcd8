from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.meters.models import Meter
from apps.siteconfig.models import SiteSettings

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_TOU_PERIODS = 5
MAX_TOU_SLOTS = 20
MAX_EXTERNAL_INPUTS = 3

current_validators = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10000"))]


class Zone(models.Model):
    """An electrical zone (switchboard) with a maximum current per phase.

    Zones form a tree of at most ``SiteSettings.max_zone_levels`` levels and
    ``SiteSettings.max_zones`` zones. A sub-zone never allows more than its
    parent; stations hang only on terminal zones. A zone with a meter is
    dynamic: the meter measures building loads plus the stations below it,
    minus the zone's production when ``meter_net_of_production`` says the
    production meter's inverter sits behind it.
    """

    name = models.CharField(_("name"), max_length=64, unique=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        verbose_name=_("parent zone"),
    )
    max_current_a = models.DecimalField(
        _("maximum current per phase (A)"),
        max_digits=7,
        decimal_places=1,
        validators=current_validators,
    )
    meter = models.OneToOneField(
        Meter,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="measured_zone",
        verbose_name=_("zone meter"),
    )
    degraded_current_a = models.DecimalField(
        _("degraded setpoint (A)"),
        max_digits=7,
        decimal_places=1,
        default=Decimal("0"),
        validators=current_validators,
        help_text=_("Current always available for charging, used when the zone meter is lost."),
    )
    production_meter = models.OneToOneField(
        Meter,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="produced_zone",
        verbose_name=_("local production meter"),
    )
    meter_net_of_production = models.BooleanField(
        _("zone meter net of production"),
        default=False,
        help_text=_(
            "Tick when the zone meter also sees this zone's production (e.g. at the grid "
            "connection with the solar inverter behind it): it then reads consumption minus "
            "production, and evce adds the production back instead of counting it twice."
        ),
    )
    phase_imbalance_limit_a = models.DecimalField(
        _("phase imbalance limit (A)"),
        max_digits=7,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("10000"))],
    )

    class Meta:
        verbose_name = _("zone")
        verbose_name_plural = _("zones")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_current_a__gt=0), name="zone_max_current_positive"
            ),
            models.CheckConstraint(
                condition=Q(
                    degraded_current_a__gte=0, degraded_current_a__lte=models.F("max_current_a")
                ),
                name="zone_degraded_within_max",
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="zone_not_own_parent"),
            models.CheckConstraint(
                condition=Q(meter__isnull=True)
                | Q(production_meter__isnull=True)
                | ~Q(meter=models.F("production_meter")),
                name="zone_meter_not_production_meter",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return self.meter_id is not None

    def ancestors(self) -> list[Zone]:
        """Parents from the nearest to the top zone; stops on a cycle."""
        chain: list[Zone] = []
        seen = {self.pk} if self.pk else set()
        node = self.parent
        while node is not None and node.pk not in seen:
            chain.append(node)
            seen.add(node.pk)
            node = node.parent
        return chain

    def level(self) -> int:
        """1 for a top zone, 2 for its sub-zones, …"""
        return len(self.ancestors()) + 1

    def subtree_height(self) -> int:
        """Number of levels from this zone down to its deepest descendant (1 = terminal)."""
        if not self.pk:
            return 1
        children = list(Zone.objects.filter(parent_id=self.pk))
        return 1 + max((child.subtree_height() for child in children), default=0)

    def clean(self) -> None:
        site = SiteSettings.load()
        errors: dict[str, list] = {}

        def add(field: str, message) -> None:
            errors.setdefault(field, []).append(message)

        if self.max_current_a is not None and self.max_current_a <= 0:
            add("max_current_a", _("must be greater than 0 A"))
        if self.parent_id is not None:
            parent = self.parent
            if self.pk and (
                parent.pk == self.pk or any(z.pk == self.pk for z in parent.ancestors())
            ):
                add("parent", _("A zone cannot be placed below itself."))
            else:
                depth = parent.level() + self.subtree_height()
                if depth > site.max_zone_levels:
                    add(
                        "parent",
                        _("Zones are limited to %(n)d levels.") % {"n": site.max_zone_levels},
                    )
                if parent.stations.exists():
                    add(
                        "parent",
                        _(
                            "Zone %(name)s has stations: only terminal zones hold stations, "
                            "so it cannot get sub-zones."
                        )
                        % {"name": parent.name},
                    )
                if self.max_current_a is not None and self.max_current_a > parent.max_current_a:
                    add(
                        "max_current_a",
                        _("exceeds parent's %(max)s A") % {"max": _amps(parent.max_current_a)},
                    )
        if self.pk and self.max_current_a is not None:
            biggest_child = Zone.objects.filter(parent_id=self.pk).aggregate(
                m=models.Max("max_current_a")
            )["m"]
            if biggest_child is not None and biggest_child > self.max_current_a:
                add(
                    "max_current_a",
                    _("is below the %(max)s A of one of its sub-zones")
                    % {"max": _amps(biggest_child)},
                )
        if not self.pk and Zone.objects.count() >= site.max_zones:
            add("__all__", _("The site is limited to %(n)d zones.") % {"n": site.max_zones})
        if (
            self.degraded_current_a is not None
            and self.max_current_a is not None
            and self.degraded_current_a > self.max_current_a
        ):
            add("degraded_current_a", _("cannot exceed the zone maximum"))
        for field in ("meter", "production_meter"):
            meter_id = getattr(self, f"{field}_id")
            if meter_id is None:
                continue
            meter = getattr(self, field)
            if meter.is_reporting:
                add(field, _("Meter %(name)s is a reporting meter.") % {"name": meter.name})
            used = Zone.objects.filter(Q(meter_id=meter_id) | Q(production_meter_id=meter_id))
            if self.pk:
                used = used.exclude(pk=self.pk)
            if used.exists():
                add(field, _("Meter %(name)s already serves another zone.") % {"name": meter.name})
        if self.meter_id is not None and self.meter_id == self.production_meter_id:
            add("production_meter", _("The production meter must differ from the zone meter."))
        if self.meter_net_of_production and (
            self.meter_id is None or self.production_meter_id is None
        ):
            # Telling the building load from a net reading needs the production
            # behind that meter, measured on this zone.
            add(
                "meter_net_of_production",
                _(
                    "A zone meter net of production needs a zone meter and this zone's "
                    "production meter."
                ),
            )
        if errors:
            raise ValidationError(errors)


def _amps(value: Decimal) -> str:
    """63.0 → '63', 63.5 → '63.5' for messages."""
    return f"{value.normalize():f}"


class TouPeriod(models.Model):
    """A time-of-use period capping the zones it applies to at a % of their maximum."""

    name = models.CharField(_("name"), max_length=32, unique=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    days = models.JSONField(
        _("days of week"), default=list, help_text=_("Among mon, tue, wed, thu, fri, sat, sun.")
    )
    max_percent = models.PositiveSmallIntegerField(
        _("maximum setpoint (%)"), validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    zones = models.ManyToManyField(
        Zone,
        blank=True,
        related_name="tou_periods",
        verbose_name=_("zones"),
        help_text=_("Leave empty to apply to all zones."),
    )

    class Meta:
        verbose_name = _("time-of-use period")
        verbose_name_plural = _("time-of-use periods")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(max_percent__lte=100), name="tou_percent_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if not isinstance(self.days, list) or not self.days:
            errors["days"] = _("Choose at least one day.")
        else:
            unknown = [d for d in self.days if d not in DAYS]
            if unknown:
                errors["days"] = _("Unknown days: %(days)s (use %(all)s).") % {
                    "days": ", ".join(map(str, unknown)),
                    "all": ", ".join(DAYS),
                }
            elif len(set(self.days)) != len(self.days):
                errors["days"] = _("A day is listed twice.")
        if not self.pk and TouPeriod.objects.count() >= MAX_TOU_PERIODS:
            errors["__all__"] = _("At most %(n)d time-of-use periods.") % {"n": MAX_TOU_PERIODS}
        if errors:
            raise ValidationError(errors)


class TouSlot(models.Model):
    """A daily time slot of a TOU period; ``end < start`` crosses midnight."""

    period = models.ForeignKey(TouPeriod, on_delete=models.CASCADE, related_name="slots")
    start = models.TimeField(_("start"))
    end = models.TimeField(_("end"))

    class Meta:
        verbose_name = _("time slot")
        verbose_name_plural = _("time slots")
        ordering = ["period", "start"]
        constraints = [
            models.CheckConstraint(condition=~Q(start=models.F("end")), name="tou_slot_not_empty")
        ]

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def clean(self) -> None:
        # Errors on a field (not __all__) let full_clean skip the matching
        # database constraint instead of repeating it as "Constraint … is violated".
        if self.start is not None and self.start == self.end:
            raise ValidationError({"end": _("A slot must not start and end at the same time.")})
        if not self.pk and TouSlot.objects.count() >= MAX_TOU_SLOTS:
            raise ValidationError(_("At most %(n)d time slots in total.") % {"n": MAX_TOU_SLOTS})


class InputKind(models.TextChoices):
    DISCRETE_INPUT = "discrete_input", _("Modbus discrete input")
    COIL = "coil", _("Modbus coil")
    API = "api", _("Set through the API")


class ExternalInput(models.Model):
    """A digital input that, when active, caps every zone at ``percent`` %.

    While any input is active, TOU periods are ignored and the lowest active
    input applies; 0 % suspends all charging.
    """

    number = models.PositiveSmallIntegerField(
        _("input number"),
        unique=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_EXTERNAL_INPUTS)],
    )
    name = models.CharField(_("name"), max_length=64)
    enabled = models.BooleanField(_("enabled"), default=True)
    percent = models.PositiveSmallIntegerField(
        _("maximum setpoint (%)"), validators=[MinValueValidator(0), MaxValueValidator(99)]
    )
    kind = models.CharField(
        _("source"), max_length=16, choices=InputKind.choices, default=InputKind.DISCRETE_INPUT
    )
    device = models.ForeignKey(
        Meter,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="external_inputs",
        verbose_name=_("Modbus device"),
    )
    address = models.PositiveIntegerField(
        _("bit address"), null=True, blank=True, validators=[MaxValueValidator(65535)]
    )
    active_when_off = models.BooleanField(_("active when the bit is 0"), default=False)
    active = models.BooleanField(_("active"), default=False, help_text=_("Last known state."))

    class Meta:
        verbose_name = _("external input")
        verbose_name_plural = _("external inputs")
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(number__gte=1, number__lte=MAX_EXTERNAL_INPUTS),
                name="input_number_range",
            ),
            models.CheckConstraint(condition=Q(percent__lte=99), name="input_percent_range"),
            models.CheckConstraint(
                condition=Q(kind="api") | (Q(device__isnull=False) & Q(address__isnull=False)),
                name="input_modbus_needs_device",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number}: {self.name}"

    def clean(self) -> None:
        if self.kind != InputKind.API and (self.device_id is None or self.address is None):
            missing = "device" if self.device_id is None else "address"
            raise ValidationError({missing: _("A Modbus input needs a device and a bit address.")})


class ValidityMode(models.TextChoices):
    """How long an EBMS reduction lasts (SPEC §9)."""

    ABSOLUTE = "absolute", _("Until a given time")
    DURATION = "duration", _("For a duration")
    NONE = "none", _("Until cleared")


class EbmsReductionQuerySet(models.QuerySet):
    def in_force(self, now) -> EbmsReductionQuerySet:
        """Reductions active at ``now``: set, not cleared, not expired."""
        return self.filter(cleared_at=None, created_at__lte=now).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gt=now)
        )


class EbmsReduction(models.Model):
    """A limit set on a zone by a building management system.

    Either a percentage of the zone maximum or an absolute current (at most
    the zone maximum). It lasts until ``valid_until`` (given, or the time it
    was set plus ``duration_s``), or with no end (``validity_mode`` none)
    until it is cleared; a new one replaces it.
    """

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="ebms_reductions")
    percent = models.DecimalField(
        _("maximum (%)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    current_a = models.DecimalField(
        _("maximum current (A)"),
        max_digits=7,
        decimal_places=1,
        null=True,
        blank=True,
        validators=current_validators,
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    validity_mode = models.CharField(
        _("validity"), max_length=8, choices=ValidityMode.choices, default=ValidityMode.ABSOLUTE
    )
    duration_s = models.PositiveIntegerField(
        _("duration (s)"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    created_at = models.DateTimeField(_("set at"))
    valid_until = models.DateTimeField(
        _("valid until"), null=True, blank=True, help_text=_("Empty: until cleared.")
    )
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = EbmsReductionQuerySet.as_manager()

    class Meta:
        verbose_name = _("EBMS reduction")
        verbose_name_plural = _("EBMS reductions")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["zone", "valid_until"], name="ebmsreduction_zone_until")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(percent__isnull=False) & Q(current_a__isnull=True))
                | (Q(percent__isnull=True) & Q(current_a__isnull=False)),
                name="ebms_reduction_percent_xor_current",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=models.F("created_at")),
                name="ebms_reduction_valid_after_set",
            ),
            models.CheckConstraint(
                condition=(Q(validity_mode="none") & Q(valid_until__isnull=True))
                | (~Q(validity_mode="none") & Q(valid_until__isnull=False)),
                name="ebms_reduction_end_matches_mode",
            ),
        ]

    def __str__(self) -> str:
        limit = f"{self.percent} %" if self.percent is not None else f"{self.current_a} A"
        if self.valid_until is None:
            return f"{self.zone}: {limit} until cleared"
        return f"{self.zone}: {limit} until {self.valid_until:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if (self.percent is None) == (self.current_a is None):
            errors["percent"] = _("Give either a percentage or a current, not both.")
        elif (
            self.current_a is not None
            and self.zone_id is not None
            and self.current_a > self.zone.max_current_a
        ):
            errors["current_a"] = _("cannot exceed the zone maximum of %(max)s A") % {
                "max": _amps(Decimal(self.zone.max_current_a))
            }
        if self.validity_mode == ValidityMode.NONE:
            if self.valid_until is not None:
                errors["valid_until"] = _("A reduction until cleared has no end time.")
        elif self.valid_until is None:
            errors["valid_until"] = _("Give the end of the validity.")
        elif self.created_at and self.valid_until <= self.created_at:
            errors["valid_until"] = _("The validity must end after it starts.")
        if self.validity_mode == ValidityMode.DURATION and not self.duration_s:
            errors["duration_s"] = _("Give the duration in seconds.")
        if errors:
            raise ValidationError(errors)

    def is_active(self, now) -> bool:
        return (
            self.cleared_at is None
            and self.created_at <= now
            and (self.valid_until is None or now < self.valid_until)
        )
