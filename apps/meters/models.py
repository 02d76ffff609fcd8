from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.meters.modbus.registers import RegisterMap, register_map_errors

meter_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}\Z",
    _("Use 1–64 letters, digits, spaces or . _ + - (starting with a letter or digit)."),
)


class MeterModel(models.Model):
    """A register map: where and how a meter model exposes its values.

    Built-in models ship with evce and cannot be edited; custom ones are
    created by installers (or imported as JSON) and validated as a whole.
    """

    name = models.CharField(
        _("name"), max_length=64, unique=True, validators=[meter_name_validator]
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    builtin = models.BooleanField(_("built-in"), default=False, editable=False)
    register_map = models.JSONField(
        _("register map"),
        help_text=_(
            "Per value (current_l1_a … energy_delivered_kwh): address (0-based), format, "
            "register type, scale and word order."
        ),
    )

    class Meta:
        verbose_name = _("meter model")
        verbose_name_plural = _("meter models")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def as_json(self) -> dict:
        """The model in its import/export JSON shape."""
        return {"name": self.name, "description": self.description, "registers": self.register_map}

    def as_register_map(self) -> RegisterMap:
        return RegisterMap.from_dict(self.as_json())

    def clean(self) -> None:
        errors = register_map_errors(self.as_json())
        if errors:
            raise ValidationError({"register_map": errors})


class ConnectionType(models.TextChoices):
    TCP = "tcp", _("Modbus TCP")
    RTU = "rtu", _("Modbus RTU (RS-485)")


class Parity(models.TextChoices):
    NONE = "N", _("None")
    EVEN = "E", _("Even")
    ODD = "O", _("Odd")


class Meter(models.Model):
    """A power meter read over Modbus TCP or RTU.

    A meter measures one zone (making it dynamic), a zone's local production,
    or — when ``is_reporting`` — other loads that are only shown and logged.
    """

    name = models.CharField(
        _("name"), max_length=64, unique=True, validators=[meter_name_validator]
    )
    model = models.ForeignKey(
        MeterModel, on_delete=models.PROTECT, related_name="meters", verbose_name=_("model")
    )
    connection_type = models.CharField(
        _("connection"), max_length=3, choices=ConnectionType.choices, default=ConnectionType.TCP
    )
    host = models.CharField(_("host"), max_length=253, blank=True)
    port = models.PositiveIntegerField(
        _("TCP port"), default=502, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    unit_id = models.PositiveSmallIntegerField(
        _("unit id"), default=255, validators=[MinValueValidator(1), MaxValueValidator(255)]
    )
    serial_device = models.CharField(_("serial device"), max_length=200, blank=True)
    baudrate = models.PositiveIntegerField(
        _("baud rate"),
        default=19200,
        validators=[MinValueValidator(1200), MaxValueValidator(921600)],
    )
    bytesize = models.PositiveSmallIntegerField(
        _("data bits"), default=8, validators=[MinValueValidator(7), MaxValueValidator(8)]
    )
    parity = models.CharField(
        _("parity"), max_length=1, choices=Parity.choices, default=Parity.NONE
    )
    stopbits = models.PositiveSmallIntegerField(
        _("stop bits"), default=1, validators=[MinValueValidator(1), MaxValueValidator(2)]
    )
    timeout_ms = models.PositiveIntegerField(
        _("timeout (ms)"),
        default=1000,
        validators=[MinValueValidator(50), MaxValueValidator(30000)],
    )
    is_reporting = models.BooleanField(
        _("reporting only"),
        default=False,
        help_text=_("Measures other loads; only shown and logged."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("meter")
        verbose_name_plural = _("meters")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(unit_id__gte=1, unit_id__lte=255), name="meter_unit_id_range"
            ),
            models.CheckConstraint(
                condition=~models.Q(connection_type="tcp") | ~models.Q(host=""),
                name="meter_tcp_needs_host",
            ),
            models.CheckConstraint(
                condition=~models.Q(connection_type="rtu") | ~models.Q(serial_device=""),
                name="meter_rtu_needs_device",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def address_display(self) -> str:
        if self.connection_type == ConnectionType.TCP:
            return f"{self.host}:{self.port} #{self.unit_id}"
        frame = f"{self.bytesize}{self.parity}{self.stopbits}"
        return f"{self.serial_device} {self.baudrate} {frame} #{self.unit_id}"

    def serves_a_zone(self) -> bool:
        # The zones point at their meters (measured_zone, produced_zone): asked from this side.
        return Meter.objects.filter(
            models.Q(pk=self.pk)
            & (models.Q(measured_zone__isnull=False) | models.Q(produced_zone__isnull=False))
        ).exists()

    def clean(self) -> None:
        errors = {}
        if self.connection_type == ConnectionType.TCP and not self.host:
            errors["host"] = _("A Modbus TCP meter needs a host.")
        if self.connection_type == ConnectionType.RTU and not self.serial_device:
            errors["serial_device"] = _("A Modbus RTU meter needs a serial device.")
        if self.pk and self.is_reporting and self.serves_a_zone():
            errors["is_reporting"] = _("This meter serves a zone; it cannot be a reporting meter.")
        if errors:
            raise ValidationError(errors)


class MeterRecord(models.Model):
    """A downsampled reading of a meter, kept for history charts and export."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="records")
    at = models.DateTimeField(_("time"))
    current_l1_a = models.FloatField(null=True, blank=True)
    current_l2_a = models.FloatField(null=True, blank=True)
    current_l3_a = models.FloatField(null=True, blank=True)
    power_total_kw = models.FloatField(null=True, blank=True)
    energy_delivered_kwh = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("meter record")
        verbose_name_plural = _("meter records")
        indexes = [models.Index(fields=["meter", "at"], name="meterrecord_meter_at")]

    def __str__(self) -> str:
        return f"{self.meter} @ {self.at:%Y-%m-%d %H:%M:%S}"
