"""RFID cards as CSV, in the format installers already use on such appliances.

One card a line, ``;``-separated, every line ending with ``;``::

    id_tag;is_blocked;vip_level;comments;
    04A1B2C3;0;1;Fleet car 12;

``is_blocked`` and ``vip_level`` are 0 or 1. A comment containing ``;``, a
double quote or a line break is written between double quotes (standard CSV
quoting), so any stored comment survives a round trip; files without such
comments never contain a quote.

Import checks the whole file before touching the database and reports every
problem with its line number; a file with any problem changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.devicelog.models import EventCategory
from apps.devicelog.services import device_log_write
from apps.rfid.models import AuthGroup, Card, id_tag_validator
from apps.rfid.services import CHUNK_SIZE, CardMembership, _cards_changed, chunked

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

SEPARATOR = ";"
COLUMNS = ("id_tag", "is_blocked", "vip_level", "comments")
HEADER = SEPARATOR.join(COLUMNS) + SEPARATOR
# Separators people end up with when a spreadsheet re-saves the file.
OTHER_SEPARATORS = (",", "\t", "|")
# A wrong file must not drown the one useful message in thousands of lines.
MAX_ERRORS = 100
FLAGS = {"0": False, "1": True}


class CardCsvError(Exception):
    """The file cannot be imported; ``errors`` lists every problem by line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class CardRow:
    line: int
    id_tag: str
    authorized: bool
    vip: bool
    comment: str


@dataclass(frozen=True, slots=True)
class CardImportResult:
    """What an import did (or would do, for a check): cards by outcome."""

    created: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


class _Line:
    """A file-like object whose ``write`` hands back the text, to stream csv rows."""

    def write(self, text: str) -> str:
        return text


def _writer():
    return csv.writer(_Line(), delimiter=SEPARATOR, lineterminator="\n")


def cards_csv_export(*, cards: QuerySet[Card] | None = None) -> Iterator[str]:
    """Yield the header, then one line per card (``\\n``-terminated), by id tag.

    A generator over a database iterator, so a large card list streams
    (``StreamingHttpResponse``, a file, standard output) without being held
    in memory. ``cards`` narrows the export (all cards by default).
    """
    writer = _writer()
    yield HEADER + "\n"
    queryset = Card.objects.all() if cards is None else cards
    rows = queryset.order_by("id_tag", "pk").values_list("id_tag", "authorized", "vip", "comment")
    for id_tag, authorized, vip, comment in rows.iterator(chunk_size=2000):
        yield writer.writerow([id_tag, int(not authorized), int(vip), comment, ""])


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CardCsvError(
            [_("line %(line)d: the file is not UTF-8 text.") % {"line": line}]
        ) from None


def _fields(row: list[str]) -> list[str]:
    # Every line ends with the separator, which leaves one empty last field.
    return row[:-1] if row and row[-1] == "" else row


def _separator_hint(row: list[str]) -> str | None:
    """The separator a mangled line seems to use instead of ``;``, if any."""
    text = SEPARATOR.join(row)
    for separator in OTHER_SEPARATORS:
        if len(_fields(text.split(separator))) >= len(COLUMNS):
            return separator
    return None


def _describe(separator: str) -> str:
    return _("a tab") if separator == "\t" else repr(separator)


def _check_header(row: list[str]) -> tuple[str | None, bool]:
    """A problem with the header line, and whether it makes the rest meaningless."""
    if [field.strip().lower() for field in _fields(row)] == list(COLUMNS):
        return None, False
    separator = _separator_hint(row)
    if separator is not None and "id_tag" in SEPARATOR.join(row).lower():
        return (
            _("fields must be separated by ';', this file uses %(separator)s.")
            % {"separator": _describe(separator)},
            True,
        )
    return (
        _("expected the header %(expected)r, got %(got)r.")
        % {"expected": HEADER, "got": SEPARATOR.join(row)},
        False,
    )


def _check_id_tag(value: str) -> str | None:
    if not value:
        return _("the id tag is empty.")
    try:
        id_tag_validator(value)
    except ValidationError:
        if len(value) > Card._meta.get_field("id_tag").max_length:
            return _("id tag %(tag)r is longer than 20 characters.") % {"tag": value}
        return _("id tag %(tag)r may only contain printable ASCII characters, without spaces.") % {
            "tag": value
        }
    return None


def _check_flag(column: str, value: str) -> str | None:
    if value in FLAGS:
        return None
    return _("%(column)s must be 0 or 1, got %(value)r.") % {"column": column, "value": value}


def _check_comment(value: str) -> str | None:
    max_length = Card._meta.get_field("comment").max_length
    if len(value) > max_length:
        return _("comment longer than %(max)d characters (%(length)d).") % {
            "max": max_length,
            "length": len(value),
        }
    # PostgreSQL refuses NUL in text and other control characters are never meant.
    if any(ord(char) < 0x20 and char != "\t" for char in value):
        return _("the comment contains a control character.")
    return None


def cards_csv_parse(data: bytes | str) -> list[CardRow]:
    """Check a whole file and return its cards, or raise ``CardCsvError``.

    Accepts UTF-8 with or without a byte-order mark, ``\\n`` or ``\\r\\n``
    line endings, lines with or without the final ``;``, and blank lines
    (also ``;;;;`` lines left by spreadsheets). Line numbers count physical
    lines from 1, the header being line 1.
    """
    text = _decode(data)
    errors: list[str] = []

    def error(line: int, problem: str) -> None:
        errors.append(_("line %(line)d: %(problem)s") % {"line": line, "problem": problem})

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=SEPARATOR, strict=True)
    rows: list[CardRow] = []
    first_line: dict[str, int] = {}
    header_seen = False
    next_line = 1
    while len(errors) < MAX_ERRORS:
        line = next_line
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            next_line = reader.line_num + 1
            error(
                line,
                _(
                    "badly quoted field: a comment with quotes must be enclosed in "
                    "double quotes, each quote inside doubled."
                ),
            )
            continue
        next_line = reader.line_num + 1
        if not any(field.strip() for field in row):
            continue
        if not header_seen:
            header_seen = True
            problem, fatal = _check_header(row)
            if problem:
                error(line, problem)
                if fatal:
                    break
            continue

        fields = _fields(row)
        if len(fields) != len(COLUMNS):
            problem = _("expected %(expected)d fields separated by ';', got %(got)d.") % {
                "expected": len(COLUMNS),
                "got": len(fields),
            }
            separator = _separator_hint(row) if len(fields) < len(COLUMNS) else None
            if separator is not None:
                problem += " " + _("This line seems to use %(separator)s instead.") % {
                    "separator": _describe(separator)
                }
            elif len(fields) > len(COLUMNS):
                problem += " " + _("A comment containing ';' must be enclosed in double quotes.")
            error(line, problem)
            continue

        id_tag, blocked, vip, comment = fields
        id_tag, blocked, vip = id_tag.strip(), blocked.strip(), vip.strip()
        tag_problem = _check_id_tag(id_tag)
        problems = [
            tag_problem,
            _check_flag("is_blocked", blocked),
            _check_flag("vip_level", vip),
            _check_comment(comment),
        ]
        key = id_tag.lower()
        if not tag_problem and key in first_line:
            problems.append(
                _("duplicate id tag %(tag)s (also on line %(line)d).")
                % {"tag": id_tag, "line": first_line[key]}
            )
        if not tag_problem:
            first_line.setdefault(key, line)
        for problem in problems:
            if problem:
                error(line, problem)
        if not any(problems):
            rows.append(CardRow(line, id_tag, not FLAGS[blocked], FLAGS[vip], comment))

    if not header_seen and not errors:
        error(1, _("the file is empty: expected the header %(header)r.") % {"header": HEADER})
    if len(errors) >= MAX_ERRORS:
        del errors[MAX_ERRORS:]
        errors.append(
            _("Too many errors: only the first %(count)d are shown.") % {"count": MAX_ERRORS}
        )
    if errors:
        raise CardCsvError(errors)
    return rows


@transaction.atomic
def cards_csv_import(
    *,
    data: bytes | str,
    group: AuthGroup | None = None,
    dry_run: bool = False,
    source: str = "",
    user: AbstractBaseUser | None,
) -> CardImportResult:
    """Import a card file: all of it, or nothing (``CardCsvError``).

    Cards are matched by id tag whatever the case (the stored spelling is
    kept); new ones are created, existing ones take the file's blocked, VIP
    and comment values; cards not in the file are left unchanged (the import
    never deletes). With ``group``, every card of the file is also added to
    that group. ``dry_run`` only checks the file and counts.
    """
    rows = cards_csv_parse(data)
    existing: dict[str, Card] = {}
    for chunk in chunked([row.id_tag.lower() for row in rows]):
        for card in (
            Card.objects.select_for_update().annotate(key=Lower("id_tag")).filter(key__in=chunk)
        ):
            existing[card.key] = card

    to_create: list[Card] = []
    to_update: list[Card] = []
    unchanged = 0
    for row in rows:
        card = existing.get(row.id_tag.lower())
        if card is None:
            to_create.append(
                Card(id_tag=row.id_tag, authorized=row.authorized, vip=row.vip, comment=row.comment)
            )
        elif (card.authorized, card.vip, card.comment) != (row.authorized, row.vip, row.comment):
            card.authorized, card.vip, card.comment = row.authorized, row.vip, row.comment
            to_update.append(card)
        else:
            unchanged += 1
    result = CardImportResult(created=len(to_create), updated=len(to_update), unchanged=unchanged)
    if dry_run:
        return result

    try:
        with transaction.atomic():
            Card.objects.bulk_create(to_create, batch_size=CHUNK_SIZE)
    except IntegrityError:
        # Another writer registered one of these tags since the check above.
        raise CardCsvError(
            [_("Cards were changed while the file was imported; nothing was changed, try again.")]
        ) from None
    Card.objects.bulk_update(to_update, ["authorized", "vip", "comment"], batch_size=CHUNK_SIZE)

    created_tags = [card.id_tag for card in to_create]
    changed_ids = {card.pk for card in to_update}
    for chunk in chunked(created_tags):
        changed_ids.update(Card.objects.filter(id_tag__in=chunk).values_list("pk", flat=True))
    if group is not None:
        file_ids = changed_ids | {card.pk for card in existing.values()}
        for chunk in chunked(sorted(file_ids)):
            present = set(
                CardMembership.objects.filter(card_id__in=chunk, authgroup=group).values_list(
                    "card_id", flat=True
                )
            )
            rows_to_add = [
                CardMembership(card_id=pk, authgroup_id=group.pk)
                for pk in chunk
                if pk not in present
            ]
            CardMembership.objects.bulk_create(rows_to_add, ignore_conflicts=True)
            changed_ids.update(row.card_id for row in rows_to_add)

    message = ngettext(
        "Cards imported from %(source)s: %(created)d created, %(updated)d updated, "
        "%(unchanged)d unchanged (%(total)d line).",
        "Cards imported from %(source)s: %(created)d created, %(updated)d updated, "
        "%(unchanged)d unchanged (%(total)d lines).",
        result.total,
    ) % {
        "source": source or _("an upload"),
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "total": result.total,
    }
    if group is not None:
        message += " " + _("All added to group %(group)s.") % {"group": group.name}
    device_log_write(
        category=EventCategory.CONFIGURATION,
        event="cards_imported",
        message=message,
        user=user,
        data={
            "source": source,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "group": group.name if group is not None else None,
        },
    )
    if changed_ids:
        tags: set[str] = set()
        group_ids: set[int] = set()
        for chunk in chunked(sorted(changed_ids)):
            tags.update(Card.objects.filter(pk__in=chunk).values_list("id_tag", flat=True))
            group_ids.update(
                CardMembership.objects.filter(card_id__in=chunk).values_list(
                    "authgroup_id", flat=True
                )
            )
        _cards_changed(card_ids=changed_ids, id_tags=tags, group_ids=group_ids)
    return result
