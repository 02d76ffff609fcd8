"""The declarative site file: commissioning as code (import and export).

Import reads the whole YAML file, checks it completely (shape, values,
references, electrical rules) and reports *every* problem with its path, such
as ``zones[0].zones[1].max_current_a: exceeds parent's 63 A``. Only a file
without problems is applied, inside one database transaction, so an invalid
file changes nothing. Objects are matched by their natural key (meter and zone
names, station identity, card id tag, group and period names): importing
creates or updates them and leaves objects the file does not name untouched.

Export writes the current configuration in the same shape, without secrets,
so ``import → export → import`` is stable.
"""

from apps.sitefile.apply import apply_plan, site_import
from apps.sitefile.check import ImportResult, Plan, SiteFileError, parse_site_file
from apps.sitefile.export import site_export

__all__ = [
    "ImportResult",
    "Plan",
    "SiteFileError",
    "apply_plan",
    "parse_site_file",
    "site_export",
    "site_import",
]
