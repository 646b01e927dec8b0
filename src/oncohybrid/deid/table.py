"""The DICOM PS3.15 Annex E action table (Table E.1-1), kept as data with its edition.

``annex_e_2024b.json`` is the standard's own Table E.1-1 *Application Level Confidentiality
Profile Attributes* (edition 2024b), as parsed from the standard's HTML by
innolitics/dicom-standard (``standard/confidentiality_profile_attributes.json``; the commit
is named in the file's ``source``). Each row holds the tag, the attribute name, the Basic
Profile action and the action of every option column that has one. Action codes (PS3.15
§E.1.1): ``D`` dummy value, ``Z`` zero length or dummy, ``X`` remove, ``K`` keep,
``C`` clean, ``U`` replace UID consistently; ``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D`` depend on
the IOD (this engine applies the least removing one, so Type 1/2 attributes stay present),
``X/Z/U*`` is a sequence of references whose UIDs are replaced.

:func:`regenerate` rebuilds the file from a newer copy of that JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

TABLE_FILE = Path(__file__).with_name("annex_e_2024b.json")

#: Option column names of the JSON (innolitics) → ours.
_OPTION_COLUMNS = {
    "rtnSafePrivOpt": "retain_safe_private",
    "rtnUIDsOpt": "retain_uids",
    "rtnDevIdOpt": "retain_device_identity",
    "rtnInstIdOpt": "retain_institution_identity",
    "rtnPatCharsOpt": "retain_patient_characteristics",
    "rtnLongFullDatesOpt": "retain_longitudinal_full_dates",
    "rtnLongModifDatesOpt": "retain_longitudinal_modified_dates",
    "cleanDescOpt": "clean_descriptors",
    "cleanStructContOpt": "clean_structured_content",
    "cleanGraphOpt": "clean_graphics",
}

_TAG = re.compile(r"^\(([0-9A-FX]{4}),([0-9A-FX]{4})\)$")


@dataclass(frozen=True)
class Rule:
    """One row of Table E.1-1: a tag (or a repeating-group pattern) and its actions."""

    tag: str
    name: str
    basic: str
    options: dict[str, str] = field(default_factory=dict)

    def action(self, options: frozenset[str]) -> str:
        """The action under ``options``: an option's action overrides the basic one (E.3).

        Retain options (K) win over clean options (C), which win over the basic action,
        so e.g. Allergies under Retain Patient Characteristics *and* Clean Descriptors is
        cleaned, not removed.
        """
        chosen = [self.options[o] for o in options if o in self.options]
        if "K" in chosen:
            return "K"
        if "C" in chosen:
            return "C"
        return self.basic


@dataclass(frozen=True)
class ActionTable:
    """Table E.1-1 indexed by exact tag and by repeating-group masks (50xx, 60xx)."""

    edition: str
    source: str
    exact: dict[int, Rule]
    masked: tuple[tuple[int, int, Rule], ...]  # (mask, value, rule)
    private_rule: Rule

    def rule_for(self, tag: int) -> Rule | None:
        """The rule for a standard (even-group) tag, or None when the table lists none."""
        rule = self.exact.get(tag)
        if rule is not None:
            return rule
        for mask, value, masked_rule in self.masked:
            if tag & mask == value:
                return masked_rule
        return None


def _parse_tag(text: str) -> tuple[int, int] | None:
    m = _TAG.match(text.upper())
    if m is None:
        return None
    g, e = m.groups()
    mask = int("".join("0" if c == "X" else "F" for c in g + e), 16)
    value = int((g + e).replace("X", "0"), 16)
    return mask, value


@cache
def load_table(path: Path = TABLE_FILE) -> ActionTable:
    """Read the kept table (cached)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    exact: dict[int, Rule] = {}
    masked: list[tuple[int, int, Rule]] = []
    private_rule = Rule("(GGGG,EEEE)", "Private Attributes", "X", {"retain_safe_private": "C"})
    for row in data["rows"]:
        rule = Rule(row["tag"], row["name"], row["basic"], dict(row.get("options", {})))
        if "GGGG" in row["tag"].upper():
            private_rule = rule
            continue
        parsed = _parse_tag(row["tag"])
        if parsed is None:
            raise ValueError(f"Table E.1-1 row with an unreadable tag: {row['tag']!r}")
        mask, value = parsed
        if mask == 0xFFFFFFFF:
            exact[value] = rule
        else:
            masked.append((mask, value, rule))
    return ActionTable(data["edition"], data["source"], exact, tuple(masked), private_rule)


def regenerate(innolitics_json: Path, *, edition: str, source: str,
               out: Path = TABLE_FILE) -> int:
    """Rewrite the kept table from innolitics' ``confidentiality_profile_attributes.json``.

    Returns the number of rows. ``edition`` (e.g. ``"2024b"``) and ``source`` (URL with
    commit) are recorded in the file.
    """
    rows: list[dict[str, Any]] = []
    for e in json.loads(innolitics_json.read_text(encoding="utf-8")):
        opts = {_OPTION_COLUMNS[k]: v for k, v in e.items() if k in _OPTION_COLUMNS}
        row: dict[str, Any] = {"tag": e["tag"], "name": e["name"],
                               "in_std_iod": e["stdCompIOD"], "basic": e["basicProfile"]}
        if opts:
            row["options"] = opts
        rows.append(row)
    head = {"standard": "DICOM PS3.15 Annex E, Table E.1-1 Application Level "
                        "Confidentiality Profile Attributes",
            "edition": edition, "source": source,
            "generated_by": "oncohybrid.deid.table.regenerate"}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2] + ',\n "rows": [\n'
    text += ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in rows) + "\n ]\n}\n"
    out.write_text(text, encoding="utf-8")
    load_table.cache_clear()
    return len(rows)
