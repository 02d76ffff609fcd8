from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# OCPP 1.6 IdToken is CiString20Type: printable ASCII, at most 20 characters.
id_tag_validator = RegexValidator(
    r"^[\x21-\x7e]{1,20}\Z", _("1–20 printable characters, no spaces.")
)


class OnlineMode(models.TextChoices):
    ALL_CARDS = "all_cards", _("Authorize all cards")
    KNOWN_CARDS = "known_cards", _("Known cards only")
    READER_DISABLED = "reader_disabled", _("Reader disabled (charge on plug-in)")


class OfflineStrategy(models.TextChoices):
    AUTHORIZE_ALL = "authorize_all", _("Authorize all")
    REJECT_ALL = "reject_all", _("Reject all")
    USE_CACHE = "use_cache", _("Use cache (cards already accepted)")


class AuthGroup(models.Model):
    """A set of stations sharing a card list and how they authorise drivers.

    A station belongs to exactly one group; a card may be in several.
    """

    name = models.CharField(_("name"), max_length=64, unique=True)
    online_mode = models.CharField(
        _("online mode"), max_length=20, choices=OnlineMode.choices, default=OnlineMode.KNOWN_CARDS
    )
    offline_strategy = models.CharField(
        _("offline strategy"),
        max_length=20,
        choices=OfflineStrategy.choices,
        default=OfflineStrategy.USE_CACHE,
    )
    plug_and_charge_id_tag = models.CharField(
        _("id tag for plug-in starts"),
        max_length=20,
        blank=True,
        validators=[id_tag_validator],
        help_text=_("Used to start sessions when the reader is disabled."),
    )

    class Meta:
        verbose_name = _("authentication group")
        verbose_name_plural = _("authentication groups")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(online_mode__in=[m.value for m in OnlineMode]),
                name="authgroup_online_mode_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(offline_strategy__in=[s.value for s in OfflineStrategy]),
                name="authgroup_offline_strategy_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Card(models.Model):
    """An RFID card (OCPP id tag) with its rights: authorised or blocked, VIP, groups.

    A card with ``expires_at`` is answered ``Expired`` from that moment on; before
    it, stations are told the date (``expiryDate``) so they stop accepting the
    card offline too.
    """

    id_tag = models.CharField(
        _("id tag"), max_length=20, unique=True, validators=[id_tag_validator]
    )
    authorized = models.BooleanField(_("authorised"), default=True)
    vip = models.BooleanField(_("VIP"), default=False)
    comment = models.CharField(_("comment"), max_length=50, blank=True)
    groups = models.ManyToManyField(
        AuthGroup, blank=True, related_name="cards", verbose_name=_("groups")
    )
    parent_id_tag = models.CharField(
        _("parent id tag"), max_length=20, blank=True, validators=[id_tag_validator]
    )
    expires_at = models.DateTimeField(
        _("expires"),
        null=True,
        blank=True,
        help_text=_("From this moment the card is refused as expired; empty: never."),
    )
    registered_at = models.DateTimeField(_("registered"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("RFID card")
        verbose_name_plural = _("RFID cards")
        ordering = ["id_tag"]
        # OCPP compares id tags case-insensitively (CiString).
        constraints = [models.UniqueConstraint(Lower("id_tag"), name="card_id_tag_unique_ci")]

    def __str__(self) -> str:
        return self.id_tag

    def is_expired(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at

    def validate_constraints(self, exclude=None):
        # Report the case-insensitive duplicate on the field, with a clear message
        # (unless the field already failed, e.g. as an exact duplicate).
        if (
            self.id_tag
            and not (exclude and "id_tag" in exclude)
            and Card.objects.filter(id_tag__iexact=self.id_tag).exclude(pk=self.pk).exists()
        ):
            raise ValidationError(
                {"id_tag": _("A card with id tag %(tag)s already exists.") % {"tag": self.id_tag}}
            )
        super().validate_constraints(exclude=exclude)


class StationAuthState(models.Model):
    """What evce last installed on a station for authentication, to send only changes.

    The local list as the station holds it (``list_entries``, by id tag, as
    OCPP ``idTagInfo``) is what differential ``SendLocalList`` updates are
    computed against; ``list_version`` is the version evce gave it.
    """

    station = models.OneToOneField(
        "stations.Station",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="auth_state",
        verbose_name=_("station"),
    )
    list_version = models.PositiveIntegerField(_("local list version"), default=0)
    list_entries = models.JSONField(_("local list entries"), default=dict, blank=True)
    list_supported = models.BooleanField(_("local list supported"), null=True, blank=True)
    list_max_length = models.PositiveIntegerField(_("local list capacity"), null=True, blank=True)
    update_max_length = models.PositiveIntegerField(_("entries per update"), null=True, blank=True)
    free_vend_prefix = models.CharField(
        _("free-vend key prefix"),
        max_length=40,
        blank=True,
        help_text=_("Vendor prefix of the station's FreeVendActive key, when it has one."),
    )
    configuration_read = models.BooleanField(_("configuration read"), default=False)
    applied_configuration = models.JSONField(_("applied configuration"), default=dict, blank=True)
    rejected_keys = models.JSONField(
        _("refused configuration"),
        default=dict,
        blank=True,
        help_text=_("Keys the station refused, with its answer."),
    )
    synced_at = models.DateTimeField(_("last synchronised"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("station authentication state")
        verbose_name_plural = _("station authentication states")

    def __str__(self) -> str:
        return f"{self.station} (list v{self.list_version})"
