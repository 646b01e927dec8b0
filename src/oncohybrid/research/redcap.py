"""REDCap data dictionaries (CSV) and the checks of one form's values.

The data dictionary is REDCap's "Data Dictionary" CSV (Project Setup → Data Dictionary;
REDCap Help & FAQ "Data Dictionary"), one row per field with the 18 columns of
:data:`COLUMNS`, in this order. Read by :func:`read_dictionary`, written back unchanged by
:func:`write_dictionary` (a round trip keeps every cell). What is used:

- field types ``text notes dropdown radio checkbox yesno truefalse calc slider descriptive
  file`` (``sql`` and ``file`` are kept but not entered here);
- choices ``"1, Yes | 2, No"``; checkbox values stored REDCap's way as ``field___code``;
- text validation ``integer number number_Ndp date_ymd date_dmy date_mdy datetime_ymd
  datetime_seconds_ymd time email alpha_only phone zipcode`` with min/max;
- required fields, identifiers (``Identifier? = y``, dropped in de-identified exports),
  branching logic and calculations (:mod:`oncohybrid.research.logic`);
- the field annotation ``@IMAGING=<source>``: the value flows from the imaging record
  (response per criterion, SUVs, TMTV, lesion counts) and is not typed (see
  :data:`IMAGING_SOURCES`).

Records export in REDCap's flat "CSV (raw)" layout: ``record_id``, then for repeating
instruments ``redcap_repeat_instrument``, ``redcap_repeat_instance``, then the fields.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oncohybrid.errors import InputError
from oncohybrid.research import logic

__all__ = ["COLUMNS", "Field", "DataDictionary", "read_dictionary", "write_dictionary",
           "parse_dictionary", "FIELD_TYPES", "IMAGING_SOURCES", "FormCheck"]

#: REDCap data dictionary columns, in REDCap's order.
COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note",
    "Text Validation Type OR Show Slider Number", "Text Validation Min",
    "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)",
    "Matrix Group Name", "Matrix Ranking?", "Field Annotation",
)
FIELD_TYPES = frozenset({"text", "notes", "dropdown", "radio", "checkbox", "yesno",
                         "truefalse", "calc", "slider", "descriptive", "file", "sql"})
_CHOICE_TYPES = frozenset({"dropdown", "radio", "checkbox"})
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VALIDATIONS = frozenset({"integer", "number", "date_ymd", "date_dmy", "date_mdy",
                          "datetime_ymd", "datetime_dmy", "datetime_mdy",
                          "datetime_seconds_ymd", "time", "email", "alpha_only", "phone",
                          "zipcode"})
_NDP = re.compile(r"^number_(\d)dp(?:_comma_decimal)?$")

#: ``@IMAGING=<source>`` sources: what the imaging record gives for a timepoint (``tp``)
#: or for the patient (``patient``). ``response:<criterion>`` / ``bor:<criterion>`` take
#: any criterion name of the response engine (recist, percist, lugano, …).
IMAGING_SOURCES = {
    "scan_date": "tp", "days_since_baseline": "tp", "tp_label": "tp", "treatment_line": "tp",
    "tracer": "tp", "modality": "tp", "n_lesions": "tp", "suvmax_max": "tp",
    "suvpeak_max": "tp", "sulpeak_max": "tp", "tmtv_ml": "tp", "tlg_total": "tp",
    "sum_ld_mm": "tp", "n_timepoints": "patient", "baseline_date": "patient",
}
_IMAGING = re.compile(r"@IMAGING=([a-z_]+(?::[a-z0-9_\-]+)?)")


def imaging_source_kind(source: str) -> str | None:
    """``tp`` or ``patient`` for a known ``@IMAGING`` source, else ``None``."""
    if source.startswith("response:"):
        return "tp"
    if source.startswith("bor:"):
        return "patient"
    return IMAGING_SOURCES.get(source)


@dataclass(frozen=True)
class Field:
    """One row of the data dictionary."""

    name: str
    form: str
    type: str
    label: str
    section: str = ""
    choices_text: str = ""
    note: str = ""
    validation: str = ""
    vmin: str = ""
    vmax: str = ""
    identifier: bool = False
    branching: str = ""
    required: bool = False
    annotation: str = ""
    extra: tuple[str, ...] = ("", "", "", "")  # alignment, question no., matrix group, ranking

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(code, label) pairs; yes/no and true/false have REDCap's fixed codes."""
        if self.type == "yesno":
            return [("1", "Yes"), ("0", "No")]
        if self.type == "truefalse":
            return [("1", "True"), ("0", "False")]
        if self.type not in _CHOICE_TYPES and self.type != "slider":
            return []
        if self.type == "slider":
            return []
        out = []
        for part in self.choices_text.split("|"):
            if not part.strip():
                continue
            code, sep, label = part.partition(",")
            out.append((code.strip(), label.strip() if sep else code.strip()))
        return out

    @property
    def imaging_source(self) -> str | None:
        m = _IMAGING.search(self.annotation)
        return m.group(1) if m else None

    @property
    def entered(self) -> bool:
        """Typed by a person (not calculated, not from imaging, not descriptive)."""
        return (self.type not in ("calc", "descriptive", "sql", "file")
                and self.imaging_source is None)

    def columns(self) -> list[str]:
        """The export columns of the field (checkboxes: one ``name___code`` per option)."""
        if self.type == "descriptive":
            return []
        if self.type == "checkbox":
            return [f"{self.name}___{code.lower()}" for code, _ in self.choices]
        return [self.name]

    @property
    def is_date(self) -> bool:
        return self.validation.startswith(("date_", "datetime_"))

    @property
    def free_text(self) -> bool:
        """Notes, or text without a validation: dropped from de-identified exports
        (REDCap's de-identification option "remove unvalidated text fields and notes")."""
        if self.imaging_source is not None:
            return False
        return self.type == "notes" or (self.type == "text" and not self.validation)

    def row(self) -> list[str]:
        return [self.name, self.form, self.section, self.type, self.label, self.choices_text,
                self.note, self.validation, self.vmin, self.vmax,
                "y" if self.identifier else "", self.branching, "y" if self.required else "",
                self.extra[0], self.extra[1], self.extra[2], self.extra[3], self.annotation]

    def check(self, raw: Any) -> tuple[str, str | None]:
        """(normalised value, problem or ``None``) of one entered value."""
        if isinstance(raw, (list, tuple, set)):
            if self.type != "checkbox":
                return "", f"{self.name}: one value expected"
            codes = {c for c, _ in self.choices}
            bad = [v for v in raw if str(v) not in codes]
            if bad:
                return "", f"{self.name}: {bad[0]!r} is not one of the choices"
            return ",".join(sorted({str(v) for v in raw})), None
        value = "" if raw is None else str(raw).strip()
        if value == "":
            return "", None
        if self.type in ("dropdown", "radio", "yesno", "truefalse", "checkbox"):
            codes = [c for c, _ in self.choices]
            parts = value.split(",") if self.type == "checkbox" else [value]
            for p in parts:
                if p.strip() not in codes:
                    return "", (f"{self.name}: {p.strip()!r} is not one of the choices "
                                f"({', '.join(codes)})")
            return value, None
        if self.type == "slider":
            return _check_number(self, value, "number")
        v = self.validation
        if not v or self.type == "notes":
            return value, None
        if v == "integer" or v == "number" or _NDP.match(v):
            return _check_number(self, value, v)
        if v.startswith("date_") or v.startswith("datetime"):
            return _check_date(self, value)
        if v == "time":
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
                return "", f"{self.name}: {value!r} is not a time HH:MM"
            return value, None
        if v == "email":
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                return "", f"{self.name}: {value!r} is not an e-mail address"
            return value, None
        if v == "alpha_only":
            if not value.isalpha():
                return "", f"{self.name}: {value!r} must be letters only"
            return value, None
        if v in ("phone", "zipcode"):
            if not re.fullmatch(r"[0-9 +()\-]{3,32}", value):
                return "", f"{self.name}: {value!r} is not a {v}"
            return value, None
        return value, None


def _check_number(f: Field, value: str, v: str) -> tuple[str, str | None]:
    try:
        x = float(value)
    except ValueError:
        return "", f"{f.name}: {value!r} is not a number"
    if v == "integer" and not re.fullmatch(r"[+-]?\d+", value):
        return "", f"{f.name}: {value!r} is not a whole number"
    m = _NDP.match(v)
    if m and not re.fullmatch(rf"[+-]?\d+(\.\d{{{m.group(1)}}})?", value):
        return "", f"{f.name}: {value!r} must have {m.group(1)} decimal place(s)"
    for bound, low in ((f.vmin, True), (f.vmax, False)):
        if bound.strip():
            try:
                b = float(bound)
            except ValueError:
                continue
            if (low and x < b) or (not low and x > b):
                side = "below the minimum" if low else "above the maximum"
                return "", f"{f.name}: {value} is {side} {bound}"
    return value, None


def _parse_date(value: str, validation: str) -> dt.datetime | None:
    order = validation.rsplit("_", 1)[-1]
    dfmt = {"ymd": "%Y-%m-%d", "dmy": "%d-%m-%Y", "mdy": "%m-%d-%Y"}.get(order, "%Y-%m-%d")
    fmts = [dfmt]
    if validation.startswith("datetime_seconds"):
        fmts = [dfmt + " %H:%M:%S"]
    elif validation.startswith("datetime"):
        fmts = [dfmt + " %H:%M"]
    # REDCap's raw export writes dates as Y-M-D whatever the display format.
    fmts.append(fmts[0].replace(dfmt, "%Y-%m-%d"))
    for fm in fmts:
        try:
            return dt.datetime.strptime(value, fm)
        except ValueError:
            continue
    return None


def _check_date(f: Field, value: str) -> tuple[str, str | None]:
    d = _parse_date(value, f.validation)
    if d is None:
        return "", f"{f.name}: {value!r} is not a valid date for {f.validation}"
    with_time = f.validation.startswith("datetime")
    norm = (d.strftime("%Y-%m-%d %H:%M:%S" if "seconds" in f.validation else "%Y-%m-%d %H:%M")
            if with_time else d.strftime("%Y-%m-%d"))
    for bound, low in ((f.vmin, True), (f.vmax, False)):
        if bound.strip():
            b = _parse_date(bound.strip(), f.validation) or _parse_date(bound.strip(),
                                                                          "date_ymd")
            if b is not None and ((low and d < b) or (not low and d > b)):
                return "", f"{f.name}: {norm} is {'before' if low else 'after'} {bound}"
    return norm, None


@dataclass
class FormCheck:
    """The outcome of checking one form instance: cleaned values and problems."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    missing_required: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors and not self.missing_required


@dataclass(frozen=True)
class DataDictionary:
    """The fields of a study's CRFs, in dictionary order."""

    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for f in self.fields:
            if f.name in seen:
                raise InputError(f"data dictionary: field {f.name!r} appears twice")
            seen.add(f.name)

    @property
    def record_id_field(self) -> str:
        return self.fields[0].name if self.fields else "record_id"

    @property
    def forms(self) -> list[str]:
        return list(dict.fromkeys(f.form for f in self.fields))

    def form_fields(self, form: str) -> list[Field]:
        return [f for f in self.fields if f.form == form]

    def get(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def columns(self, forms: Iterable[str] | None = None) -> list[str]:
        wanted = set(forms) if forms is not None else None
        return [c for f in self.fields if wanted is None or f.form in wanted
                for c in f.columns()]

    def flat_values(self, values: Mapping[str, str]) -> dict[str, str]:
        """Stored values (checkbox ``"1,3"``) → REDCap columns (``meds___1 = 1``)."""
        out: dict[str, str] = {}
        for f in self.fields:
            if f.name not in values and f.type != "checkbox":
                continue
            if f.type == "checkbox":
                ticked = {v.strip() for v in values.get(f.name, "").split(",") if v.strip()}
                if f.name not in values:
                    continue
                for code, _ in f.choices:
                    out[f"{f.name}___{code.lower()}"] = "1" if code in ticked else "0"
            else:
                out[f.name] = values[f.name]
        return out

    def logic_values(self, values: Mapping[str, str]) -> dict[str, str]:
        return {**values, **self.flat_values(values)}

    def check_form(self, form: str, submitted: Mapping[str, Any],
                   context: Mapping[str, str] | None = None) -> FormCheck:
        """Validate one form's submitted values: types, ranges, choices, then branching
        logic (fields it hides are cleared, REDCap-style), then required fields, then the
        form's calculations in dictionary order. ``context`` holds the record's other
        values (other forms, imaging values) that logic may refer to."""
        fields = self.form_fields(form)
        if not fields:
            raise InputError(f"CRF form {form!r} is not in the data dictionary "
                             f"(forms: {', '.join(self.forms)})")
        unknown = [k for k in submitted if self.get(k.split("___")[0]) is None
                   or self.get(k.split("___")[0]).form != form]  # type: ignore[union-attr]
        if unknown:
            raise InputError(f"CRF form {form!r}: unknown field {unknown[0]!r}")
        values: dict[str, str] = dict(context or {})
        errors: dict[str, str] = {}
        for f in fields:
            if not f.entered:
                continue
            raw = submitted.get(f.name)
            if f.type == "checkbox" and raw is None:
                raw = [code for code, _ in f.choices
                       if str(submitted.get(f"{f.name}___{code.lower()}", "")) in ("1", "on")]
            value, problem = f.check(raw)
            if problem:
                errors[f.name] = problem
            values[f.name] = value
        hidden: list[str] = []
        missing: list[str] = []
        for f in fields:
            if f.branching.strip() and not logic.is_true(f.branching,
                                                         self.logic_values(values)):
                hidden.append(f.name)
                values[f.name] = ""
                errors.pop(f.name, None)
                continue
            if f.type == "calc":
                values[f.name] = logic.format_calc(
                    logic.evaluate(f.choices_text, self.logic_values(values)))
            if f.required and f.entered and values.get(f.name, "") == "":
                missing.append(f.name)
        own = {f.name: values.get(f.name, "") for f in fields
               if f.type not in ("descriptive", "sql", "file")}
        return FormCheck(own, errors, missing, hidden)


def _cell(row: Mapping[str, str | None], col: str) -> str:
    return (row.get(col) or "").strip()


def parse_dictionary(text: str, source: str = "data dictionary") -> DataDictionary:
    """Parse REDCap data-dictionary CSV text; errors name the row and column."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header or header[0] != COLUMNS[0]:
        raise InputError(f"{source}: not a REDCap data dictionary (first column must be "
                         f"{COLUMNS[0]!r}, found {header[0] if header else 'nothing'!r})")
    for col in COLUMNS[:6]:
        if col not in header:
            raise InputError(f"{source}: column {col!r} is missing")
    reader.fieldnames = header
    fields: list[Field] = []
    for i, row in enumerate(reader, start=2):
        name = _cell(row, COLUMNS[0])
        if not name:
            continue
        where = f"{source} row {i}"
        if not _NAME.match(name):
            raise InputError(f"{where}: field name {name!r} must be lower case letters, "
                             "digits and _ and start with a letter")
        ftype = _cell(row, COLUMNS[3]).lower()
        if ftype not in FIELD_TYPES:
            raise InputError(f"{where}: field {name!r} has unknown type {ftype!r}")
        form = _cell(row, COLUMNS[1])
        if not _NAME.match(form):
            raise InputError(f"{where}: form name {form!r} of field {name!r} is not valid")
        validation = _cell(row, COLUMNS[7])
        if ftype == "text" and validation and validation not in _VALIDATIONS \
                and not _NDP.match(validation):
            raise InputError(f"{where}: field {name!r} has unknown validation "
                             f"{validation!r}")
        f = Field(
            name=name, form=form, type=ftype, label=_cell(row, COLUMNS[4]),
            section=_cell(row, COLUMNS[2]), choices_text=_cell(row, COLUMNS[5]),
            note=_cell(row, COLUMNS[6]), validation=validation,
            vmin=_cell(row, COLUMNS[8]), vmax=_cell(row, COLUMNS[9]),
            identifier=_cell(row, COLUMNS[10]).lower() == "y",
            branching=_cell(row, COLUMNS[11]),
            required=_cell(row, COLUMNS[12]).lower() == "y",
            annotation=_cell(row, COLUMNS[17]),
            extra=(_cell(row, COLUMNS[13]), _cell(row, COLUMNS[14]),
                   _cell(row, COLUMNS[15]), _cell(row, COLUMNS[16])),
        )
        if ftype in _CHOICE_TYPES and not f.choices:
            raise InputError(f"{where}: {ftype} field {name!r} has no choices")
        for what, text_ in (("branching logic", f.branching),
                            ("calculation", f.choices_text if ftype == "calc" else "")):
            if text_.strip():
                try:
                    logic.parse(text_)
                except InputError as exc:
                    raise InputError(f"{where}: {what} of {name!r}: {exc}") from None
        if ftype == "calc" and not f.choices_text.strip():
            raise InputError(f"{where}: calc field {name!r} has no calculation")
        src = f.imaging_source
        if src is not None and imaging_source_kind(src) is None:
            raise InputError(f"{where}: field {name!r}: unknown @IMAGING source {src!r} "
                             f"(known: {', '.join(sorted(IMAGING_SOURCES))}, "
                             "response:<criterion>, bor:<criterion>)")
        fields.append(f)
    if not fields:
        raise InputError(f"{source}: the data dictionary has no field")
    dd = DataDictionary(tuple(fields))
    names = {f.name for f in fields}
    for f in fields:
        for text_ in (f.branching, f.choices_text if f.type == "calc" else ""):
            for ref in logic.field_names(text_) if text_.strip() else ():
                if ref not in names:
                    raise InputError(f"{source}: field {f.name!r} refers to unknown field "
                                     f"[{ref}]")
    return dd


def read_dictionary(path: str | Path) -> DataDictionary:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{p}: not UTF-8 text") from None
    return parse_dictionary(text, str(p))


def write_dictionary(dd: DataDictionary, out: io.TextIOBase | Any) -> None:
    """Write REDCap data-dictionary CSV (all 18 columns, REDCap's header)."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for f in dd.fields:
        w.writerow(f.row())


def dictionary_text(dd: DataDictionary) -> str:
    buf = io.StringIO()
    write_dictionary(dd, buf)
    return buf.getvalue()


def to_json(dd: DataDictionary) -> list[list[str]]:
    """JSON-ready rows (for the database)."""
    return [f.row() for f in dd.fields]


def from_json(rows: list[list[str]]) -> DataDictionary:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows(rows)
    return parse_dictionary(buf.getvalue())
