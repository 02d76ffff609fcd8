from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.energy.allocator import FloorMode, Priority, ProductionMode
from apps.siteconfig.signals import site_settings_checked

# The energy-management vocabulary is the allocator's (one definition); the
# settings only label it. A value without a label fails at import.
FLOOR_MODE_LABELS = {
    FloorMode.IEC61851: _("IEC 61851 (6 A)"),
    FloorMode.EVZE: _("EV/ZE ready (8 A single-phase, 14 A three-phase)"),
}
PRIORITY_LABELS = {
    Priority.ENERGY: _("Least energy received first"),
    Priority.DURATION: _("Shortest charging time first"),
}
PRODUCTION_MODE_LABELS = {
    ProductionMode.GRID: _("Grid only"),
    ProductionMode.GRID_LOCAL: _("Grid and local production"),
    ProductionMode.LOCAL: _("Local production only"),
}


class SupervisionMode(models.TextChoices):
    LOCAL = "local", _("Local (evce authorises)")
    UNIQUE = "unique", _("One CPO for all stations")
    MULTIPLE = "multiple", _("Stations split between CPOs and local groups")


class SiteSettings(models.Model):
    """The site-wide settings: one row (pk 1), created on first access.

    Energy-management parameters feed the allocator; login settings feed the
    account lockout; the limits bound the zone tree.
    """

    SINGLETON_PK = 1

    name = models.CharField(_("device name"), max_length=64, default="evce")
    floor_mode = models.CharField(
        _("floor mode"),
        max_length=16,
        choices=[(mode.value, FLOOR_MODE_LABELS[mode]) for mode in FloorMode],
        default=FloorMode.IEC61851.value,
    )
    priority = models.CharField(
        _("shedding priority"),
        max_length=16,
        choices=[(priority.value, PRIORITY_LABELS[priority]) for priority in Priority],
        default=Priority.ENERGY.value,
    )
    production_mode = models.CharField(
        _("production mode"),
        max_length=16,
        choices=[(mode.value, PRODUCTION_MODE_LABELS[mode]) for mode in ProductionMode],
        default=ProductionMode.GRID.value,
    )
    supervision_mode = models.CharField(
        _("supervision mode"),
        max_length=16,
        choices=SupervisionMode.choices,
        default=SupervisionMode.LOCAL,
    )

    optimisation_enabled = models.BooleanField(_("consumption optimisation"), default=True)
    reduction_trigger_a = models.DecimalField(
        _("reduction trigger (A)"),
        max_digits=5,
        decimal_places=1,
        default=4,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    reduction_gap_a = models.DecimalField(
        _("reduction gap (A)"),
        max_digits=5,
        decimal_places=1,
        default=2,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    increase_gap_a = models.DecimalField(
        _("increase gap (A)"),
        max_digits=5,
        decimal_places=1,
        default=1,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    idle_suspension_enabled = models.BooleanField(_("suspend idle sessions"), default=False)
    idle_after_s = models.PositiveIntegerField(
        _("idle after (s)"),
        default=300,
        validators=[MinValueValidator(10), MaxValueValidator(86400)],
    )
    idle_wake_up_interval_s = models.PositiveIntegerField(
        _("idle wake-up interval (s)"),
        default=600,
        validators=[MinValueValidator(60), MaxValueValidator(86400)],
    )
    nominal_voltage_v = models.PositiveIntegerField(
        _("nominal voltage per phase (V)"),
        default=230,
        validators=[MinValueValidator(100), MaxValueValidator(400)],
    )
    meter_poll_interval_ms = models.PositiveIntegerField(
        _("meter polling period (ms)"),
        default=500,
        validators=[MinValueValidator(250), MaxValueValidator(10000)],
    )
    meter_lost_after_polls = models.PositiveIntegerField(
        _("meter lost after failed polls"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
    )
    heartbeat_interval_s = models.PositiveIntegerField(
        _("station heartbeat interval (s)"),
        default=60,
        validators=[MinValueValidator(10), MaxValueValidator(86400)],
    )
    meter_value_sample_interval_s = models.PositiveIntegerField(
        _("station meter-value interval (s)"),
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
    )
    max_zones = models.PositiveIntegerField(
        _("maximum number of zones"),
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
    )
    max_zone_levels = models.PositiveIntegerField(
        _("maximum zone levels"),
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
    )

    login_max_attempts = models.PositiveIntegerField(
        _("failed logins before lock"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
    )
    login_lock_s = models.PositiveIntegerField(
        _("login lock period (s)"),
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(86400)],
    )
    session_timeout_s = models.PositiveIntegerField(
        _("web session timeout (s)"),
        default=6000,
        validators=[MinValueValidator(60), MaxValueValidator(604800)],
    )

    ocpp_log_retention_days = models.PositiveIntegerField(
        _("OCPP message log retention (days)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
    )
    meter_sample_retention_days = models.PositiveIntegerField(
        _("meter sample retention (days)"),
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
    )
    shared_authorization_key_hash = models.CharField(
        _("shared station authorization key (hashed)"),
        max_length=128,
        blank=True,
        help_text=_("Used by stations that have no key of their own (security profiles 1 and 2)."),
    )
    setup_completed = models.BooleanField(_("setup wizard completed"), default=False)

    class Meta:
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="site_settings_singleton"),
            models.CheckConstraint(
                condition=models.Q(
                    meter_poll_interval_ms__gte=250, meter_poll_interval_ms__lte=10000
                ),
                name="site_settings_poll_interval_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if (
            self.reduction_gap_a is not None
            and self.reduction_trigger_a is not None
            and self.reduction_gap_a > self.reduction_trigger_a
        ):
            raise ValidationError(
                {"reduction_gap_a": _("The reduction gap cannot exceed the reduction trigger.")}
            )
        # Zones live above the settings: the rules about them are theirs to check.
        site_settings_checked.send(sender=SiteSettings, instance=self)

    @classmethod
    def load(cls) -> SiteSettings:
        """The settings row, created with defaults the first time."""
        obj, _created = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return obj
