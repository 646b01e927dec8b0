"""The BI-RADS outcome audit of screening and diagnostic breast imaging.

Definitions (ACR BI-RADS Atlas, 5th edition, "Follow-up and outcome monitoring", as
restated for this platform in issue #21 and docs/breast.md):

- screening positive = categories 0, 3, 4, 4A, 4B, 4C, 5; screening negative = 1, 2;
- diagnostic positive = 4, 4A, 4B, 4C, 5; diagnostic negative = 1, 2, 3;
- category 6 examinations, and diagnostic category 0, are left out of the audit;
- an examination *is followed by a cancer* when a malignant outcome (invasive or DCIS) of
  the same patient is dated 0 to 365 days after it, both ends included (a flat one-year
  follow-up, not "until the next screen"); each examination is judged on its own, so two
  examinations before one cancer can both be true positives;
- TP = positive and followed by a cancer, FN = negative and followed by one, FP and TN
  otherwise;
- recall rate = positive screens / screens; CDR = TP screens per 1,000 screens;
  PPV1 = TP screens / positive screens; PPV2 = examinations with a biopsy recommended
  that are followed by a cancer / examinations with a biopsy recommended; PPV3 = outcome
  rows with a biopsy performed that are malignant / outcome rows with a biopsy performed;
  sensitivity = TP / (TP + FN), specificity = TN / (TN + FP), per purpose; abnormal
  interpretation rate (diagnostic) = positive / examinations;
- minimal cancer = invasive cancer <= 10 mm or DCIS; node-negative invasive = invasive
  cancer with negative nodes (of invasive cancers whose nodal status is known).

Input rows that cannot be used (an unknown category, purpose, modality, result or yes/no
value, a date that is not a date, a size that is not a number, an empty identifier) are
reported by their data-row number (1 = the first row after the header); the audit goes on
with the other rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from oncohybrid.errors import InputError

__all__ = ["AuditResult", "BadRow", "Exam", "Outcome", "PurposeAudit", "audit",
           "EXAM_COLUMNS", "OUTCOME_COLUMNS", "read_exams", "read_outcomes",
           "FOLLOW_UP_DAYS"]

#: The flat follow-up window, days after the examination (both ends included).
FOLLOW_UP_DAYS = 365

EXAM_COLUMNS = ("exam_id", "patient_id", "date", "radiologist", "modality", "purpose",
                "assessment", "biopsy_recommended")
OUTCOME_COLUMNS = ("patient_id", "date", "result", "cancer_type", "size_mm", "nodes",
                   "biopsy_performed")

MODALITIES = ("MG", "DBT", "CEM", "US", "MRI")
PURPOSES = ("screening", "diagnostic")
ASSESSMENTS = ("0", "1", "2", "3", "4", "4A", "4B", "4C", "5", "6")
RESULTS = ("malignant", "benign", "high-risk")
CANCER_TYPES = ("invasive", "dcis", "")
NODES = ("positive", "negative", "")

SCREENING_POSITIVE = frozenset({"0", "3", "4", "4A", "4B", "4C", "5"})
SCREENING_NEGATIVE = frozenset({"1", "2"})
DIAGNOSTIC_POSITIVE = frozenset({"4", "4A", "4B", "4C", "5"})
DIAGNOSTIC_NEGATIVE = frozenset({"1", "2", "3"})


@dataclass(frozen=True)
class Exam:
    row: int
    exam_id: str
    patient_id: str
    date: dt.date
    radiologist: str
    modality: str
    purpose: str
    assessment: str
    biopsy_recommended: bool

    @property
    def left_out(self) -> str | None:
        """Why the examination is not audited (category 6; diagnostic category 0)."""
        if self.assessment == "6":
            return "category 6"
        if self.purpose == "diagnostic" and self.assessment == "0":
            return "diagnostic category 0"
        return None

    @property
    def positive(self) -> bool:
        pos = SCREENING_POSITIVE if self.purpose == "screening" else DIAGNOSTIC_POSITIVE
        return self.assessment in pos


@dataclass(frozen=True)
class Outcome:
    row: int
    patient_id: str
    date: dt.date
    result: str
    cancer_type: str
    size_mm: float | None
    nodes: str
    biopsy_performed: bool

    @property
    def malignant(self) -> bool:
        return self.result == "malignant"

    @property
    def minimal(self) -> bool | None:
        """Invasive <= 10 mm or DCIS; None when type or invasive size is unknown."""
        if self.cancer_type == "dcis":
            return True
        if self.cancer_type == "invasive":
            return None if self.size_mm is None else self.size_mm <= 10.0
        return None


@dataclass(frozen=True)
class BadRow:
    file: str  # "exams" | "outcomes"
    row: int
    reason: str


# --------------------------------------------------------------------------- reading


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}")


def _parse_date(text: str) -> dt.date:
    t = text.strip()
    if _DATE.fullmatch(t):
        try:
            return dt.date.fromisoformat(t)
        except ValueError:
            pass
    raise ValueError(f"date {text!r} is not a date (YYYY-MM-DD)")


def _choice(value: str, allowed: Iterable[str], name: str, upper: bool = False) -> str:
    v = value.strip().upper() if upper else value.strip().lower()
    if v not in allowed:
        shown = "|".join(a for a in allowed if a) + (" or empty" if "" in allowed else "")
        raise ValueError(f"{name} {value!r} is not one of {shown}")
    return v


def _yes_no(value: str, name: str) -> bool:
    return _choice(value, ("yes", "no"), name) == "yes"


def _required(value: str, name: str) -> str:
    v = value.strip()
    if not v:
        raise ValueError(f"{name} is empty")
    return v


def _rows(text: str, columns: tuple[str, ...], what: str):
    """Data rows of a CSV text as (data-row number, {column: value}); the header must name
    every column (case and surrounding spaces ignored, extra columns allowed)."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    # spreadsheets in French (and other) locales write ";"-separated files
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise InputError(f"{what}: the file is empty (expected a header row with "
                         f"{', '.join(columns)})")
    names = [h.strip().lower() for h in header]
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(f"{what}: the header lacks the column(s) {', '.join(missing)} "
                         f"(found {', '.join(header)})")
    index = {c: names.index(c) for c in columns}
    for number, record in enumerate(reader, start=1):
        if not any(cell.strip() for cell in record):
            continue  # a blank line keeps its number but is no data
        yield number, {c: (record[i] if i < len(record) else "") for c, i in index.items()}


def read_exams(text: str, what: str = "EXAMS.csv") -> tuple[list[Exam], list[BadRow]]:
    """Examinations from the text of EXAMS.csv, and the rows that cannot be used."""
    exams: list[Exam] = []
    bad: list[BadRow] = []
    for number, r in _rows(text, EXAM_COLUMNS, what):
        try:
            exams.append(Exam(
                row=number,
                exam_id=_required(r["exam_id"], "exam_id"),
                patient_id=_required(r["patient_id"], "patient_id"),
                date=_parse_date(r["date"]),
                radiologist=r["radiologist"].strip(),
                modality=_choice(r["modality"], MODALITIES, "modality", upper=True),
                purpose=_choice(r["purpose"], PURPOSES, "purpose"),
                assessment=_choice(r["assessment"], ASSESSMENTS, "assessment", upper=True),
                biopsy_recommended=_yes_no(r["biopsy_recommended"], "biopsy_recommended")))
        except ValueError as exc:
            bad.append(BadRow("exams", number, str(exc)))
    return exams, bad


def read_outcomes(text: str, what: str = "OUTCOMES.csv") -> tuple[list[Outcome], list[BadRow]]:
    """Tissue diagnoses from the text of OUTCOMES.csv, and the rows that cannot be used."""
    outcomes: list[Outcome] = []
    bad: list[BadRow] = []
    for number, r in _rows(text, OUTCOME_COLUMNS, what):
        try:
            size_text = r["size_mm"].strip()
            size: float | None = None
            if size_text:
                try:
                    size = float(size_text)
                except ValueError:
                    raise ValueError(f"size_mm {size_text!r} is not a number") from None
                if not math.isfinite(size) or size < 0:
                    raise ValueError(f"size_mm {size_text!r} is not a size")
            outcomes.append(Outcome(
                row=number,
                patient_id=_required(r["patient_id"], "patient_id"),
                date=_parse_date(r["date"]),
                result=_choice(r["result"], RESULTS, "result"),
                cancer_type=_choice(r["cancer_type"], CANCER_TYPES, "cancer_type"),
                size_mm=size,
                nodes=_choice(r["nodes"], NODES, "nodes"),
                biopsy_performed=_yes_no(r["biopsy_performed"], "biopsy_performed")))
        except ValueError as exc:
            bad.append(BadRow("outcomes", number, str(exc)))
    return outcomes, bad


# --------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class Rate:
    """``k / n`` (None when n is 0)."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None


@dataclass
class PurposeAudit:
    """The counts of one purpose (screening or diagnostic) in one group."""

    purpose: str
    exams: int = 0
    positive: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    biopsy_recommended: int = 0
    biopsy_recommended_cancer: int = 0
    #: outcome rows (PPV3) of this group
    biopsies: int = 0
    biopsies_malignant: int = 0
    #: cancers (outcome rows) that followed a true-positive examination of this purpose
    cancers: list[Outcome] = field(default_factory=list)

    def rates(self) -> dict[str, Rate]:
        """Each audit rate as k/n (CDR as a proportion; multiply by 1,000)."""
        common = {"sensitivity": Rate(self.tp, self.tp + self.fn),
                  "specificity": Rate(self.tn, self.tn + self.fp)}
        minimal = [c.minimal for c in self.cancers]
        invasive_known = [c for c in self.cancers
                          if c.cancer_type == "invasive" and c.nodes in ("positive", "negative")]
        common["minimal_cancer_fraction"] = Rate(sum(1 for m in minimal if m),
                                                 sum(1 for m in minimal if m is not None))
        common["node_negative_invasive_fraction"] = Rate(
            sum(1 for c in invasive_known if c.nodes == "negative"), len(invasive_known))
        if self.purpose == "screening":
            return {"recall_rate": Rate(self.positive, self.exams),
                    "cdr": Rate(self.tp, self.exams),
                    "ppv1": Rate(self.tp, self.positive), **common}
        return {"ppv2": Rate(self.biopsy_recommended_cancer, self.biopsy_recommended),
                "ppv3": Rate(self.biopsies_malignant, self.biopsies),
                "abnormal_interpretation_rate": Rate(self.positive, self.exams),
                "cdr": Rate(self.tp, self.exams), **common}


@dataclass
class GroupAudit:
    screening: PurposeAudit
    diagnostic: PurposeAudit


@dataclass
class AuditResult:
    overall: GroupAudit
    groups: dict[str, GroupAudit]
    by: str | None
    bad_rows: list[BadRow]
    left_out: dict[str, int]
    exams_read: int
    outcomes_read: int
    #: per exam: (exam, "TP"|"FP"|"FN"|"TN") for the audited examinations
    judged: list[tuple[Exam, str]]


def _followed_by(exam: Exam, cancers_by_patient: dict[str, list[Outcome]]) -> list[Outcome]:
    return [o for o in cancers_by_patient.get(exam.patient_id, ())
            if 0 <= (o.date - exam.date).days <= FOLLOW_UP_DAYS]


def _count(exams: list[Exam], outcomes: list[Outcome],
           cancers_by_patient: dict[str, list[Outcome]],
           outcome_filter: Callable[[Outcome], bool]) -> tuple[GroupAudit, list]:
    g = GroupAudit(PurposeAudit("screening"), PurposeAudit("diagnostic"))
    judged: list[tuple[Exam, str]] = []
    seen: dict[str, set[int]] = {"screening": set(), "diagnostic": set()}
    for e in exams:
        p = g.screening if e.purpose == "screening" else g.diagnostic
        cancers = _followed_by(e, cancers_by_patient)
        p.exams += 1
        if e.positive:
            p.positive += 1
            verdict = "TP" if cancers else "FP"
        else:
            verdict = "FN" if cancers else "TN"
        setattr(p, verdict.lower(), getattr(p, verdict.lower()) + 1)
        if verdict == "TP":
            for c in cancers:
                if c.row not in seen[e.purpose]:
                    seen[e.purpose].add(c.row)
                    p.cancers.append(c)
        judged.append((e, verdict))
        # PPV2 is defined over every audited examination with a biopsy recommendation;
        # it is reported with the diagnostic audit, where such recommendations belong.
        if e.biopsy_recommended:
            g.diagnostic.biopsy_recommended += 1
            if cancers:
                g.diagnostic.biopsy_recommended_cancer += 1
    for o in outcomes:
        if o.biopsy_performed and outcome_filter(o):
            g.diagnostic.biopsies += 1
            if o.malignant:
                g.diagnostic.biopsies_malignant += 1
    return g, judged


def audit(exams: list[Exam], outcomes: list[Outcome], bad_rows: list[BadRow] | None = None,
          by: str | None = None) -> AuditResult:
    """Judge each examination against the outcomes and count the audit (module docstring).

    ``by`` = ``"radiologist"`` or ``"modality"`` adds one audit per value. PPV3 of a group
    counts the biopsies of patients with an audited examination of that group 0-365 days
    before the biopsy.
    """
    if by not in (None, "radiologist", "modality"):
        raise InputError(f"--by: {by!r} is not radiologist or modality")
    left_out: dict[str, int] = {"category 6": 0, "diagnostic category 0": 0}
    audited: list[Exam] = []
    for e in exams:
        why = e.left_out
        if why:
            left_out[why] += 1
        else:
            audited.append(e)
    bad = list(bad_rows or [])
    left_out["bad exam rows"] = sum(1 for b in bad if b.file == "exams")
    left_out["bad outcome rows"] = sum(1 for b in bad if b.file == "outcomes")
    cancers_by_patient: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if o.malignant:
            cancers_by_patient.setdefault(o.patient_id, []).append(o)
    overall, judged = _count(audited, outcomes, cancers_by_patient, lambda o: True)
    groups: dict[str, GroupAudit] = {}
    if by:
        grouped: dict[str, list[Exam]] = {}
        for e in audited:
            grouped.setdefault(getattr(e, by), []).append(e)
        for key in sorted(grouped):
            members = grouped[key]
            by_patient: dict[str, list[Exam]] = {}
            for e in members:
                by_patient.setdefault(e.patient_id, []).append(e)

            def linked(o: Outcome, by_patient=by_patient) -> bool:
                return any(0 <= (o.date - e.date).days <= FOLLOW_UP_DAYS
                           for e in by_patient.get(o.patient_id, ()))

            groups[key], _ = _count(members, outcomes, cancers_by_patient, linked)
    return AuditResult(overall=overall, groups=groups, by=by, bad_rows=bad,
                       left_out=left_out, exams_read=len(exams), outcomes_read=len(outcomes),
                       judged=judged)
