"""Cohort queries over imaging and clinical facts, per-patient reasons, CONSORT flow.

A cohort is an ordered list of inclusion and exclusion criteria, each a name and a
condition in REDCap's logic syntax (:mod:`oncohybrid.research.logic`) over one
patient's *facts* (:func:`fact_names` lists them; the service builds them from the study
database: demographics, exams with tracer family and modality, dates, treatment lines,
criteria results, and the study's clinical data such as ``tumour_type``). Multi-valued
facts read like REDCap checkboxes: ``[tracer(fdg)] = '1'``, ``[modality(mr)] = '1'``.

A patient is included when every inclusion criterion holds and no exclusion criterion
does. The flow follows the CONSORT 2010 diagram (Schulz, Altman, Moher, BMJ
2010;340:c332, Figure 1) as adapted to observational cohorts (STROBE item 13 and its flow
diagram: von Elm et al., Lancet 2007;370:1453–7): assessed for eligibility → excluded,
with the number per reason → included. Each excluded patient is counted once, under the
first criterion that excludes them in the order given (inclusion criteria first); the
per-patient reasons list every criterion that failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oncohybrid.errors import InputError
from oncohybrid.research import logic

__all__ = ["Criterion", "CohortQuery", "PatientOutcome", "Flow", "evaluate_cohort",
           "parse_criterion", "consort_figure", "FACT_DOC", "multi_fact"]

#: The facts a criterion may name (the service fills them); ``(x)`` marks checkbox-style
#: multi-valued facts.
FACT_DOC = {
    "sex": "M, F or O (0010,0040) Patient's Sex",
    "age": "age in whole years at the first exam",
    "n_exams": "stored imaging studies", "n_pet": "PET studies", "n_ct": "CT studies",
    "n_mr": "MR studies",
    "first_exam": "date of the first stored study (YYYY-MM-DD)",
    "last_exam": "date of the last stored study",
    "tracer(x)": "tracer family of any PET/SPECT series: fdg, psma, sstr, fapi, flt, "
                 "amino_acid, other, unknown",
    "modality(x)": "modality of any series, lower case: pt, ct, mr, nm, …",
    "n_timepoints": "timepoints of the longitudinal record",
    "treatment_lines": "distinct treatment lines named on the record's timepoints",
    "assessed(x)": "criteria with a stored assessment: recist, percist, lugano, …",
    "bor_<criterion>": "best overall response of that criterion (e.g. bor_recist = 'PR')",
    "last_<criterion>": "latest timepoint response of that criterion",
    "tmtv_baseline_ml": "total MTV at the first timepoint (sum of lesion MTVs)",
    "suvmax_baseline": "highest lesion SUVmax at the first timepoint",
    "<clinical field>": "any column of the study's clinical data (e.g. tumour_type, "
                        "ecog, stage) or any CRF field already entered",
}


def multi_fact(name: str, values: Iterable[str]) -> dict[str, str]:
    """Checkbox-style facts ``name___code = '1'`` for each value (codes lower case, non
    alphanumerics as ``_``)."""
    return {f"{name}___{re.sub(r'[^a-z0-9]+', '_', v.lower()).strip('_')}": "1"
            for v in values if v}


@dataclass(frozen=True)
class Criterion:
    """One named condition of a cohort (inclusion or exclusion)."""

    kind: str  # "include" | "exclude"
    name: str
    logic: str

    def __post_init__(self) -> None:
        if self.kind not in ("include", "exclude"):
            raise InputError(f"criterion {self.name!r}: kind must be include or exclude")
        logic.parse(self.logic)  # refuse a bad condition at once

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "logic": self.logic}


def parse_criterion(kind: str, text: str) -> Criterion:
    """``"name: logic"`` (or bare logic, named by itself) → :class:`Criterion`.

    >>> parse_criterion("include", "FDG PET: [tracer(fdg)] = '1'").name
    'FDG PET'
    """
    name, sep, cond = text.partition(":")
    if sep and not name.strip().startswith("[") and cond.strip():
        return Criterion(kind, name.strip(), cond.strip())
    return Criterion(kind, text.strip(), text.strip())


@dataclass(frozen=True)
class CohortQuery:
    """Ordered inclusion then exclusion criteria."""

    criteria: tuple[Criterion, ...]

    @classmethod
    def from_json(cls, items: Sequence[Mapping[str, str]]) -> CohortQuery:
        return cls(tuple(Criterion(i["kind"], i["name"], i["logic"]) for i in items))

    def to_json(self) -> list[dict[str, str]]:
        return [c.to_json() for c in self.criteria]

    @property
    def inclusion(self) -> list[Criterion]:
        return [c for c in self.criteria if c.kind == "include"]

    @property
    def exclusion(self) -> list[Criterion]:
        return [c for c in self.criteria if c.kind == "exclude"]


@dataclass
class PatientOutcome:
    """One patient's result: included or not, and why."""

    key: Any
    included: bool
    reasons: list[str] = field(default_factory=list)
    #: the reason this patient is counted under in the flow (first failure)
    flow_reason: str | None = None


@dataclass
class Flow:
    """CONSORT-style counts."""

    assessed: int
    included: int
    excluded: int
    #: reason → count, in criterion order (each excluded patient counted once)
    excluded_by: dict[str, int]
    #: reason → count of every patient the criterion excluded (may overlap)
    failing_by: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"assessed": self.assessed, "excluded": self.excluded,
                "included": self.included,
                "excluded_by": [{"reason": r, "n": n} for r, n in self.excluded_by.items()],
                "failing_by": [{"reason": r, "n": n} for r, n in self.failing_by.items()]}


def _reason(c: Criterion) -> str:
    return f"inclusion not met: {c.name}" if c.kind == "include" else f"exclusion: {c.name}"


def outcome(query: CohortQuery, key: Any, facts: Mapping[str, Any]) -> PatientOutcome:
    """Apply the criteria to one patient's facts.

    >>> q = CohortQuery((Criterion("include", "adult", "[age] >= 18"),))
    >>> outcome(q, 1, {"age": "17"}).reasons
    ['inclusion not met: adult']
    """
    reasons: list[str] = []
    for c in query.criteria:
        holds = logic.is_true(c.logic, facts)
        if (c.kind == "include" and not holds) or (c.kind == "exclude" and holds):
            reasons.append(_reason(c))
    return PatientOutcome(key, not reasons, reasons, reasons[0] if reasons else None)


def evaluate_cohort(query: CohortQuery,
                    patients: Iterable[tuple[Any, Mapping[str, Any]]]
                    ) -> tuple[list[PatientOutcome], Flow]:
    """Outcome per patient and the flow counts."""
    outcomes = [outcome(query, key, facts) for key, facts in patients]
    order = [_reason(c) for c in query.criteria]
    first = dict.fromkeys(order, 0)
    every = dict.fromkeys(order, 0)
    for o in outcomes:
        if o.flow_reason:
            first[o.flow_reason] += 1
        for r in o.reasons:
            every[r] += 1
    n_in = sum(o.included for o in outcomes)
    return outcomes, Flow(len(outcomes), n_in, len(outcomes) - n_in, first, every)


def consort_figure(flow: Flow, out: str | Path, *, title: str = "",
                   tracking: Mapping[str, int] | None = None) -> Path:
    """Draw the flow diagram (matplotlib) to ``out`` (.png, .pdf or .svg).

    ``tracking`` (optional) adds a box under "Included" with exam-status counts
    (e.g. ``{"baseline done": 18, "interim overdue": 2}``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    out = Path(out)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InputError(f"{out}: the figure must be .png, .pdf or .svg")
    reasons = [f"{r} (n = {n})" for r, n in flow.excluded_by.items() if n]
    track = [f"{k}: {v}" for k, v in (tracking or {}).items()]
    height = 6.0 + 0.25 * max(len(reasons), 1) + 0.25 * len(track)
    fig, ax = plt.subplots(figsize=(8.5, height))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, height)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc="white",
                                    ec="black", lw=1.2))
        ax.text(x + 0.15, y + h - 0.2, text, va="top", ha="left", fontsize=9, wrap=True)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "lw": 1.2, "color": "black"})

    top = height - 0.6
    if title:
        ax.text(5, height - 0.2, title, ha="center", va="top", fontsize=11, weight="bold")
    box(0.5, top - 1.0, 4.2, 0.8, f"Assessed for eligibility\n(n = {flow.assessed})")
    ex_h = 0.6 + 0.25 * max(len(reasons), 1)
    ex_y = top - 1.6 - ex_h
    box(5.3, ex_y, 4.5, ex_h, f"Excluded (n = {flow.excluded})\n" +
        ("\n".join("• " + r for r in reasons) if reasons else "• none"))
    arrow(2.6, top - 1.0, 2.6, ex_y - 0.9)
    arrow(2.6, ex_y + ex_h / 2, 5.3, ex_y + ex_h / 2)
    inc_y = ex_y - 1.7
    box(0.5, inc_y, 4.2, 0.8, f"Included in the cohort\n(n = {flow.included})")
    if track:
        tr_h = 0.5 + 0.25 * len(track)
        box(0.5, inc_y - 0.8 - tr_h, 4.2, tr_h, "Examinations\n" + "\n".join(track))
        arrow(2.6, inc_y, 2.6, inc_y - 0.8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return out
