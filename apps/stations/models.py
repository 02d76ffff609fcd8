from __future__ import annotations

from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.energy.allocator import CurrentType, PhaseWiring
from apps.rfid.models import AuthGroup, Card
from apps.zones.models import Zone

identity_validator = RegexValidator(
    r"^[A-Za-z0-9*\-_=+|@.]{1,30}\Z",
    _("1–30 characters among letters, digits and * - _ = + | @ . (no spaces)."),
)


class StationState(models.TextChoices):
    DISCOVERED = "discovered", _("Discovered (pending)")
    INSTALLED = "installed", _("Installed")
    REFUSED = "refused", _("Refused")


class SecurityProfile(models.IntegerChoices):
    NONE = 0, _("0 – no authentication (closed networks only)")
    BASIC = 1, _("1 – HTTP Basic authentication")
    TLS_BASIC = 2, _("2 – TLS and HTTP Basic authentication")
    TLS_CLIENT_CERT = 3, _("3 – TLS with client certificate")


class Station(models.Model):
    """A charging station, known by its OCPP box identity.

    Stations that connect with an unknown identity are *discovered* and
    answered ``Pending`` until an admin installs them in a terminal zone.
    The Basic-auth key is kept only as a hash.
    """

    identity = models.CharField(
        _("box identity"), max_length=30, unique=True, validators=[identity_validator]
    )
    name = models.CharField(_("name"), max_length=64, blank=True)
    state = models.CharField(
        _("state"), max_length=16, choices=StationState.choices, default=StationState.DISCOVERED
    )
    zone = models.ForeignKey(
        Zone,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="stations",
        verbose_name=_("zone"),
    )
    auth_group = models.ForeignKey(
        AuthGroup,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="stations",
        verbose_name=_("authentication group"),
    )
    vip = models.BooleanField(_("VIP"), default=False)
    security_profile = models.PositiveSmallIntegerField(
        _("security profile"), choices=SecurityProfile.choices, default=SecurityProfile.NONE
    )
    authorization_key_hash = models.CharField(
        _("authorization key (hashed)"), max_length=128, blank=True
    )
    authorization_key_set_at = models.DateTimeField(
        _("authorization key set"), null=True, blank=True, editable=False
    )

    vendor = models.CharField(_("vendor"), max_length=20, blank=True)
    model = models.CharField(_("model"), max_length=20, blank=True)
    serial_number = models.CharField(_("serial number"), max_length=25, blank=True)
    firmware_version = models.CharField(_("firmware"), max_length=50, blank=True)
    iccid = models.CharField(_("ICCID"), max_length=20, blank=True)
    imsi = models.CharField(_("IMSI"), max_length=20, blank=True)
    meter_type = models.CharField(_("meter type"), max_length=25, blank=True)
    meter_serial_number = models.CharField(_("meter serial number"), max_length=25, blank=True)
    web_page_url = models.URLField(_("station web page"), blank=True)

    status = models.CharField(
        _("status"), max_length=20, blank=True, help_text=_("Connector 0 status.")
    )
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    last_boot_at = models.DateTimeField(_("last boot"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last message"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    installed_at = models.DateTimeField(_("installed"), null=True, blank=True)

    class Meta:
        verbose_name = _("charging station")
        verbose_name_plural = _("charging stations")
        ordering = ["identity"]
        constraints = [
            models.CheckConstraint(
                condition=Q(security_profile__gte=0, security_profile__lte=3),
                name="station_profile_range",
            ),
            models.CheckConstraint(
                condition=~Q(state="installed") | Q(zone__isnull=False),
                name="station_installed_has_zone",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.identity

    def set_authorization_key(self, key: str | None) -> None:
        self.authorization_key_hash = make_password(key) if key else ""
        self.authorization_key_set_at = timezone.now() if key else None

    def check_authorization_key(self, key: str) -> bool:
        return bool(self.authorization_key_hash) and check_password(
            key, self.authorization_key_hash
        )

    def clean(self) -> None:
        errors = {}
        if self.zone_id is not None and Zone.objects.filter(parent_id=self.zone_id).exists():
            errors["zone"] = _(
                "Stations can only be assigned to terminal zones (without sub-zones)."
            )
        if self.state == StationState.INSTALLED:
            if self.zone_id is None:
                errors["zone"] = _("An installed station needs a zone.")
            if not self.name:
                errors["name"] = _("An installed station needs a name.")
        if errors:
            raise ValidationError(errors)


# The connector vocabulary is the allocator's (one definition, one phase
# table); the model only labels it. A value without a label fails at import.
CURRENT_TYPE_LABELS = {CurrentType.AC: _("AC"), CurrentType.DC: _("DC")}
PHASE_WIRING_LABELS = {
    PhaseWiring.MONO1: _("Single phase on L1"),
    PhaseWiring.MONO2: _("Single phase on L2"),
    PhaseWiring.MONO3: _("Single phase on L3"),
    PhaseWiring.TRI123: _("Three phase L1-L2-L3"),
    PhaseWiring.TRI231: _("Three phase L2-L3-L1"),
    PhaseWiring.TRI312: _("Three phase L3-L1-L2"),
}


class Connector(models.Model):
    """A connector of a station: AC limited in current, DC limited in power."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.PositiveSmallIntegerField(
        _("connector number"), validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    current_type = models.CharField(
        _("type"),
        max_length=2,
        choices=[(kind.value, CURRENT_TYPE_LABELS[kind]) for kind in CurrentType],
        default=CurrentType.AC.value,
    )
    max_current_a = models.DecimalField(
        _("maximum current (A)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(6), MaxValueValidator(1000)],
    )
    max_power_w = models.PositiveIntegerField(
        _("maximum power (W)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1000), MaxValueValidator(1_000_000)],
    )
    phase_wiring = models.CharField(
        _("phase wiring"),
        max_length=6,
        choices=[(wiring.value, PHASE_WIRING_LABELS[wiring]) for wiring in PhaseWiring],
        default=PhaseWiring.TRI123.value,
    )
    status = models.CharField(_("status"), max_length=20, blank=True)
    error_code = models.CharField(_("error code"), max_length=30, blank=True)
    status_info = models.CharField(_("status information"), max_length=50, blank=True)
    status_at = models.DateTimeField(_("status time"), null=True, blank=True)

    class Meta:
        verbose_name = _("connector")
        verbose_name_plural = _("connectors")
        ordering = ["station", "connector_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "connector_id"], name="connector_unique_per_station"
            ),
            models.CheckConstraint(condition=Q(connector_id__gte=1), name="connector_id_positive"),
            models.CheckConstraint(
                condition=(Q(current_type="AC") & Q(max_current_a__isnull=False))
                | (Q(current_type="DC") & Q(max_power_w__isnull=False)),
                name="connector_limit_matches_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.station} #{self.connector_id}"

    def clean(self) -> None:
        if self.current_type == CurrentType.AC and self.max_current_a is None:
            raise ValidationError({"max_current_a": _("An AC connector needs a maximum current.")})
        if self.current_type == CurrentType.DC and self.max_power_w is None:
            raise ValidationError({"max_power_w": _("A DC connector needs a maximum power.")})


def transaction_time():
    """When a CDR happened: its start, or its stop when the start never reached evce.

    The sessions list and the CDR export sort and filter on it (with ``id`` as
    the tie-breaker), so every record has a place in time; the indexes below
    are on this very expression.
    """
    return Coalesce(F("started_at"), F("stopped_at"))


class TransactionStatus(models.TextChoices):
    CHARGING = "Charging", _("Charging")
    SUSPENDED_EV = "SuspendedEV", _("Suspended by the EV")
    SUSPENDED_EVSE = "SuspendedEVSE", _("Suspended by the station")
    FINISHING = "Finishing", _("Finishing")
    FINISHED = "Finished", _("Finished")


class Transaction(models.Model):
    """A charging session and, once stopped, its charging data record (CDR).

    CDRs are kept forever. The station and card are referenced, and their
    identity/name copied, so a record stays complete after either is deleted.
    ``started_at`` is empty only for a StopTransaction whose start never
    reached evce: it is stored rather than lost.
    """

    station = models.ForeignKey(
        Station, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions"
    )
    station_identity = models.CharField(_("box identity"), max_length=30)
    station_name = models.CharField(_("station name"), max_length=64, blank=True)
    connector_id = models.PositiveSmallIntegerField(_("connector"))
    id_tag = models.CharField(_("id tag"), max_length=20, blank=True)
    card = models.ForeignKey(
        Card, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions"
    )
    vip = models.BooleanField(_("VIP"), default=False)
    started_at = models.DateTimeField(_("start"), null=True, blank=True)
    stopped_at = models.DateTimeField(_("stop"), null=True, blank=True)
    meter_start_wh = models.BigIntegerField(_("meter start (Wh)"), null=True, blank=True)
    meter_stop_wh = models.BigIntegerField(_("meter stop (Wh)"), null=True, blank=True)
    energy_wh = models.BigIntegerField(_("energy (Wh)"), default=0)
    charging_duration_s = models.PositiveIntegerField(_("charging duration (s)"), default=0)
    stop_reason = models.CharField(_("stop reason"), max_length=20, blank=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=TransactionStatus.choices,
        default=TransactionStatus.CHARGING,
    )
    phases_used = models.PositiveSmallIntegerField(_("phases used"), null=True, blank=True)
    setpoint_a = models.DecimalField(
        _("setpoint (A)"), max_digits=6, decimal_places=1, null=True, blank=True
    )
    consumption_a = models.DecimalField(
        _("consumption (A)"), max_digits=6, decimal_places=1, null=True, blank=True
    )
    tou_energy_wh = models.JSONField(
        _("energy per TOU period (Wh)"),
        default=dict,
        blank=True,
        help_text=_('Energy inside each TOU period, and outside any under "NoPeriod".'),
    )
    reservation_id = models.IntegerField(_("reservation"), null=True, blank=True)
    forced_stop = models.BooleanField(_("force-stopped"), default=False)

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["started_at"], name="tx_started_at"),
            models.Index(fields=["station", "started_at"], name="tx_station_started_at"),
            models.Index(fields=["id_tag", "started_at"], name="tx_id_tag_started_at"),
            models.Index(fields=["stopped_at"], name="tx_stopped_at"),
            models.Index(
                fields=["station"], condition=Q(stopped_at__isnull=True), name="tx_ongoing"
            ),
            # Keyset pagination of the sessions list and the CDR export (SPEC §2.4):
            # (time, id) overall, for a station and for a card.
            models.Index(transaction_time(), F("id"), name="tx_time_id"),
            models.Index(F("station"), transaction_time(), F("id"), name="tx_station_time_id"),
            models.Index(F("id_tag"), transaction_time(), F("id"), name="tx_id_tag_time_id"),
        ]
        constraints = [
            # A StartTransaction repeated by a station after a reconnection must
            # map to the same transaction.
            models.UniqueConstraint(
                fields=["station_identity", "connector_id", "id_tag", "started_at"],
                name="tx_start_unique",
            ),
            models.CheckConstraint(
                condition=Q(stopped_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(stopped_at__gte=models.F("started_at")),
                name="tx_stop_after_start",
            ),
            models.CheckConstraint(condition=Q(energy_wh__gte=0), name="tx_energy_non_negative"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.station_identity}/{self.connector_id}"

    @property
    def is_ongoing(self) -> bool:
        return self.stopped_at is None

    @property
    def energy_kwh(self) -> float:
        return self.energy_wh / 1000

    def clean(self) -> None:
        if self.started_at and self.stopped_at and self.stopped_at < self.started_at:
            raise ValidationError({"stopped_at": _("A transaction cannot stop before it starts.")})
        if (
            self.meter_start_wh is not None
            and self.meter_stop_wh is not None
            and self.meter_stop_wh < self.meter_start_wh
        ):
            raise ValidationError(
                {"meter_stop_wh": _("The meter stop value is below the meter start value.")}
            )


class MeterSample(models.Model):
    """One MeterValues sample of a connector (raw data, retention-limited)."""

    transaction = models.ForeignKey(
        Transaction, null=True, blank=True, on_delete=models.CASCADE, related_name="samples"
    )
    station = models.ForeignKey(
        Station, null=True, blank=True, on_delete=models.SET_NULL, related_name="meter_samples"
    )
    connector_id = models.PositiveSmallIntegerField(_("connector"))
    sampled_at = models.DateTimeField(_("time"))
    current_l1_a = models.FloatField(null=True, blank=True)
    current_l2_a = models.FloatField(null=True, blank=True)
    current_l3_a = models.FloatField(null=True, blank=True)
    # A current the station gave without naming its phase: it may be on any
    # phase of the connector, so it never tells how many phases the EV uses.
    current_unknown_phase_a = models.FloatField(
        _("current, phase not given"), null=True, blank=True
    )
    power_w = models.FloatField(null=True, blank=True)
    energy_wh = models.FloatField(null=True, blank=True)
    current_offered_a = models.FloatField(null=True, blank=True)
    context = models.CharField(max_length=24, blank=True)

    class Meta:
        verbose_name = _("meter sample")
        verbose_name_plural = _("meter samples")
        indexes = [
            models.Index(fields=["transaction", "sampled_at"], name="sample_tx_at"),
            models.Index(fields=["sampled_at"], name="sample_at"),
        ]

    def __str__(self) -> str:
        return f"{self.station_id}/{self.connector_id} @ {self.sampled_at:%Y-%m-%d %H:%M:%S}"


class Direction(models.TextChoices):
    IN = "in", _("station → evce")
    OUT = "out", _("evce → station")


class OcppMessage(models.Model):
    """One OCPP frame exchanged with a station, as received or sent."""

    station_identity = models.CharField(_("box identity"), max_length=30)
    at = models.DateTimeField(_("time"))
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    message_type = models.PositiveSmallIntegerField(
        _("type"), help_text=_("2 CALL, 3 CALLRESULT, 4 CALLERROR")
    )
    unique_id = models.CharField(_("message id"), max_length=36, blank=True)
    action = models.CharField(_("action"), max_length=40, blank=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)

    class Meta:
        verbose_name = _("OCPP message")
        verbose_name_plural = _("OCPP messages")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["station_identity", "-at"], name="ocppmsg_station_at"),
            models.Index(fields=["at"], name="ocppmsg_at"),
        ]

    def __str__(self) -> str:
        return f"{self.station_identity} {self.direction} {self.action or self.message_type}"


class ReservationStatus(models.TextChoices):
    REQUESTED = "requested", _("Sent to the station")
    ACTIVE = "active", _("Active")
    REFUSED = "refused", _("Refused by the station")
    USED = "used", _("Used by a transaction")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")


OPEN_RESERVATION_STATUSES = (ReservationStatus.REQUESTED, ReservationStatus.ACTIVE)


class Reservation(models.Model):
    """A connector held for one driver (OCPP ReserveNow) until ``expires_at``.

    Connector 0 holds any connector of the station. The primary key is the
    ``reservationId`` the station is given, so a StartTransaction naming it
    finds its reservation. It ends on expiry, on cancellation or when used.
    """

    station = models.ForeignKey(
        Station, on_delete=models.CASCADE, related_name="reservations", verbose_name=_("station")
    )
    connector_id = models.PositiveSmallIntegerField(
        _("connector"), validators=[MaxValueValidator(99)], help_text=_("0: any connector.")
    )
    id_tag = models.CharField(_("id tag"), max_length=20)
    parent_id_tag = models.CharField(_("parent id tag"), max_length=20, blank=True)
    expires_at = models.DateTimeField(_("expires"))
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=ReservationStatus.choices,
        default=ReservationStatus.REQUESTED,
    )
    station_answer = models.CharField(
        _("station's answer"), max_length=80, blank=True, help_text=_("Its answer to ReserveNow.")
    )
    transaction = models.ForeignKey(
        Transaction,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("transaction"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "expires_at"], name="reservation_open_expiry")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.station}/{self.connector_id} {self.id_tag}"
