"""Upstream CPO backends, which groups they supervise, and what waits to reach them.

A *supervision* is one CPO backend (SPEC §6): evce connects to it as each
relayed station (``<url>/<identity>``). Which stations are relayed depends on
the site's supervision mode: ``unique`` relays every station to the one
supervision, ``multiple`` relays the stations of each group to the
supervision the group names (:class:`GroupSupervision`), ``local`` none.

Passwords are stored encrypted (:mod:`apps.supervision.secrets`), never in
clear: a dump shows a token.
"""

from __future__ import annotations

import re

from cryptography import x509
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

PING_INTERVAL_RANGE_S = (1, 60)
MESSAGE_TIMEOUT_RANGE_S = (1, 60)
MAX_ATTEMPTS_RANGE = (1, 100_000)
DEFAULT_MAX_ATTEMPTS = 500
# Basic-auth passwords: printable ASCII, or any bytes given as hex.
PASSWORD_MAX_LENGTH = 64
_ASCII_PASSWORD_RE = re.compile(r"[\x20-\x7e]+")
_HEX_PASSWORD_RE = re.compile(r"(?:[0-9A-Fa-f]{2})+")


def validate_cpo_url(value: str) -> None:
    """A ``ws://`` or ``wss://`` URL with a host (the station identity is appended)."""
    match = re.fullmatch(r"(wss?)://([^/\s?#]+)(/[^\s?#]*)?", value or "")
    if not match:
        raise ValidationError(
            _("Enter a ws:// or wss:// URL with a host, e.g. wss://ocpp.example.com/ocpp."),
            code="invalid_url",
        )


def validate_ca_certificate(value: str) -> None:
    """One or more PEM certificates (the CAs that sign the CPO's server certificate)."""
    if not value:
        return
    try:
        certificates = x509.load_pem_x509_certificates(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        certificates = []
    if not certificates:
        raise ValidationError(
            _("Not a PEM certificate (expected -----BEGIN CERTIFICATE----- …)."),
            code="invalid_certificate",
        )


def password_bytes(*, password: str | None = None, password_hex: str | None = None) -> bytes:
    """The Basic-auth password as presented upstream, from ASCII text or hex digits.

    ``ValidationError`` on the field given (``password`` or ``password_hex``)
    when both or a bad value are given.
    """
    if password is not None and password_hex is not None:
        raise ValidationError(
            {"password_hex": _("Give the password either as text or as hex, not both.")}
        )
    if password is not None:
        if not _ASCII_PASSWORD_RE.fullmatch(password) or len(password) > PASSWORD_MAX_LENGTH:
            raise ValidationError(
                {
                    "password": _("1–%(max)d printable ASCII characters (use hex for other bytes).")
                    % {"max": PASSWORD_MAX_LENGTH}
                }
            )
        return password.encode("ascii")
    if password_hex is not None:
        if (
            not _HEX_PASSWORD_RE.fullmatch(password_hex)
            or len(password_hex) > 2 * PASSWORD_MAX_LENGTH
        ):
            raise ValidationError(
                {
                    "password_hex": _("An even number of hex digits (0-9, A-F), at most %(max)d.")
                    % {"max": 2 * PASSWORD_MAX_LENGTH}
                }
            )
        return bytes.fromhex(password_hex)
    raise ValidationError({"password": _("A password is required.")})


class AuthMode(models.TextChoices):
    NONE = "none", _("No authentication")
    SHARED = "shared", _("One password for all stations")
    PER_STATION = "per_station", _("One password per station")


class Supervision(models.Model):
    """One upstream CPO backend and how evce connects to it as each relayed station."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    url = models.CharField(
        _("URL"),
        max_length=200,
        validators=[validate_cpo_url],
        help_text=_("ws:// or wss://; the station's identity is appended."),
    )
    ping_interval_s = models.PositiveSmallIntegerField(
        _("WebSocket ping interval (s)"),
        default=30,
        validators=[
            MinValueValidator(PING_INTERVAL_RANGE_S[0]),
            MaxValueValidator(PING_INTERVAL_RANGE_S[1]),
        ],
    )
    message_timeout_s = models.PositiveSmallIntegerField(
        _("message timeout (s)"),
        default=30,
        validators=[
            MinValueValidator(MESSAGE_TIMEOUT_RANGE_S[0]),
            MaxValueValidator(MESSAGE_TIMEOUT_RANGE_S[1]),
        ],
    )
    forward_security_events = models.BooleanField(_("forward security events"), default=False)
    auth = models.CharField(
        _("Basic authentication"), max_length=16, choices=AuthMode.choices, default=AuthMode.NONE
    )
    # The shared password, encrypted (apps.supervision.secrets); empty without one.
    password_encrypted = models.TextField(_("password (encrypted)"), blank=True, editable=False)
    ca_certificate = models.TextField(
        _("CA certificate (PEM)"),
        blank=True,
        validators=[validate_ca_certificate],
        help_text=_("For wss:// only: the CA(s) that sign the CPO's server certificate."),
    )
    max_attempts = models.PositiveIntegerField(
        _("delivery attempts"),
        default=DEFAULT_MAX_ATTEMPTS,
        validators=[
            MinValueValidator(MAX_ATTEMPTS_RANGE[0]),
            MaxValueValidator(MAX_ATTEMPTS_RANGE[1]),
        ],
        help_text=_("Attempts to deliver a queued transaction message before it is flagged."),
    )

    class Meta:
        verbose_name = _("supervision (CPO)")
        verbose_name_plural = _("supervisions (CPO)")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(auth__in=[m.value for m in AuthMode]),
                name="supervision_auth_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.ca_certificate and not self.url.startswith("wss://"):
            errors["ca_certificate"] = _("A CA certificate is used with a wss:// URL only.")
        if self.auth == AuthMode.SHARED and not self.password_encrypted:
            errors["password"] = _("Shared authentication needs a password.")
        if self.auth != AuthMode.SHARED and self.password_encrypted:
            errors["password"] = _("Only shared authentication takes a supervision password.")
        if errors:
            raise ValidationError(errors)

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)


class GroupSupervision(models.Model):
    """The CPO that supervises the stations of an authentication group (``multiple`` mode).

    A group without a row stays local. Kept here rather than on the group so
    that authentication knows nothing of the relay.
    """

    group = models.OneToOneField(
        "rfid.AuthGroup",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="supervision_assignment",
        verbose_name=_("authentication group"),
    )
    supervision = models.ForeignKey(
        Supervision,
        on_delete=models.PROTECT,
        related_name="assignments",
        verbose_name=_("supervision"),
    )

    class Meta:
        verbose_name = _("group supervision")
        verbose_name_plural = _("group supervisions")

    def __str__(self) -> str:
        return f"{self.group} → {self.supervision}"


class StationCpoPassword(models.Model):
    """A station's own Basic-auth password towards its CPO (``per_station`` auth), encrypted."""

    station = models.OneToOneField(
        "stations.Station",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="cpo_password",
        verbose_name=_("station"),
    )
    password_encrypted = models.TextField(_("password (encrypted)"), editable=False)
    changed_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("station CPO password")
        verbose_name_plural = _("station CPO passwords")

    def __str__(self) -> str:
        return str(self.station)


class OutboxAction(models.TextChoices):
    START_TRANSACTION = "StartTransaction", "StartTransaction"
    STOP_TRANSACTION = "StopTransaction", "StopTransaction"
    METER_VALUES = "MeterValues", "MeterValues"


class OutboxState(models.TextChoices):
    PENDING = "pending", _("Waiting for delivery")
    DELIVERED = "delivered", _("Delivered")
    FLAGGED = "flagged", _("Attempts exhausted (kept, may be retried)")


class OutboxMessage(models.Model):
    """A transaction message (SPEC §6) waiting to reach the station's CPO, persisted.

    Kept in the database so that it survives a restart; delivered in
    ``sequence`` order per station. A message whose attempts run out is not
    deleted but ``flagged``: visible, and retried on request.
    ``transaction_id`` is evce's id of the transaction the message belongs to
    (what the CPO's id is mapped from).
    """

    station = models.ForeignKey(
        "stations.Station",
        on_delete=models.CASCADE,
        related_name="cpo_outbox",
        verbose_name=_("station"),
    )
    sequence = models.PositiveBigIntegerField(_("sequence"))
    action = models.CharField(_("action"), max_length=32, choices=OutboxAction.choices)
    payload = models.JSONField(_("payload"))
    transaction_id = models.BigIntegerField(_("evce transaction id"), null=True, blank=True)
    state = models.CharField(
        _("state"), max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("queued"))
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    sent_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("message to the CPO")
        verbose_name_plural = _("messages to the CPO")
        ordering = ["station", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["station", "sequence"], name="outbox_station_sequence_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=[s.value for s in OutboxState]),
                name="outbox_state_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["station", "state", "sequence"], name="outbox_next_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.station} #{self.sequence} {self.action}"
