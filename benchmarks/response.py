"""Throughput of the response engine: 10,000 synthetic patients × 8 timepoints.

Goal (issue "treatment-response engine"): the whole RECIST 1.1 batch — and the PERCIST
batch — in < 3 s on one core. Case generation is not timed. PERCIST comes from part B
(``oncohybrid.response.percist``); when it is missing the script says so and runs RECIST
only. Reported: the assess time per batch, patients/s, and — as a baseline measured in the
same run — the ratio to a bare Python loop that only sums every lesion value once.

Run: ``.venv/bin/python benchmarks/response.py [--patients N]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import random
import time
from decimal import Decimal

from oncohybrid.response.model import Case, LesionObs, Role, Special, State, Timepoint


def make_case(rng: random.Random, pid: int, criteria: str) -> Case:
    """A plausible patient: 1–5 targets (some nodal), 0–3 non-targets, drifting sizes."""
    start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(365))
    n_t = rng.randint(1, 5)
    n_nt = rng.randint(0, 3)
    sizes = []
    base_lesions: dict[str, LesionObs] = {}
    for i in range(n_t):
        nodal = rng.random() < 0.25
        size = Decimal(rng.randint(150 if nodal else 100, 600)) / 10
        sizes.append((f"T{i}", nodal, size))
        sul = Decimal(rng.randint(20, 150)) / 10
        base_lesions[f"T{i}"] = LesionObs(
            id=f"T{i}",
            role=Role.TARGET,
            site=f"organ{i % 3}",
            nodal=nodal,
            ld_mm=None if nodal else size,
            sa_mm=size if nodal else None,
            sul_peak=sul,
        )
    for j in range(n_nt):
        base_lesions[f"N{j}"] = LesionObs(
            id=f"N{j}", role=Role.NON_TARGET, site="bone", state=State.PRESENT
        )
    refs = {"liver_sul_mean": Decimal("2.0"), "liver_sul_sd": Decimal("0.3")}
    tps = [Timepoint(index=0, date=start, lesions=base_lesions, references=refs)]
    trend = rng.choice([Decimal("-0.15"), Decimal("-0.05"), Decimal("0.02"), Decimal("0.1")])
    for k in range(1, 8):
        les: dict[str, LesionObs] = {}
        for lid, nodal, size in sizes:
            factor = 1 + trend * k + Decimal(rng.randint(-50, 50)) / 1000
            val = max(Decimal(0), (size * factor).quantize(Decimal("0.1")))
            m: Decimal | Special = val
            if not nodal and val < 5 and val > 0:
                m = Special.TOO_SMALL
            sul = max(Decimal("0.5"), base_lesions[lid].sul_peak * factor).quantize(Decimal("0.01"))  # type: ignore[operator]
            les[lid] = LesionObs(
                id=lid,
                role=Role.TARGET,
                nodal=nodal,
                ld_mm=None if nodal else m,
                sa_mm=m if nodal else None,
                sul_peak=sul,
            )
        for j in range(n_nt):
            st = State.PRESENT if rng.random() > 0.03 else State.UNEQUIVOCAL_PROGRESSION
            les[f"N{j}"] = LesionObs(id=f"N{j}", role=Role.NON_TARGET, site="bone", state=st)
        if rng.random() < 0.04:
            les["X"] = LesionObs(
                id="X",
                role=Role.NEW,
                site="liver",
                state=State.UNEQUIVOCAL,
                ld_mm=Decimal(12),
                sul_peak=Decimal("6.0"),
            )
        tps.append(
            Timepoint(index=k, date=start + dt.timedelta(days=42 * k), lesions=les, references=refs)
        )
    return Case(
        criteria=criteria, timepoints=tps, options={}, treatment_start=start, patient_id=f"P{pid}"
    )


def run(name: str, module: str, cases: list[Case]) -> float | None:
    try:
        mod = importlib.import_module(f"oncohybrid.response.{module}")
    except ModuleNotFoundError as exc:
        print(
            f"{name}: module oncohybrid.response.{module} not available ({exc}); skipped — "
            "the lead will re-run once part B lands"
        )
        return None
    mod.assess(cases[0])  # warm-up (imports, caches)
    t0 = time.perf_counter()
    for c in cases:
        mod.assess(c)
    elapsed = time.perf_counter() - t0
    n = len(cases)
    print(
        f"{name}: {n} patients × 8 timepoints in {elapsed:.2f} s = {n / elapsed:,.0f} "
        f"patients/s ({n * 7 / elapsed:,.0f} follow-up timepoints/s); goal < 3 s: "
        f"{'met' if elapsed < 3 else 'NOT met'}"
    )
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    args = ap.parse_args()
    rng = random.Random(20240110)
    t0 = time.perf_counter()
    recist_cases = [make_case(rng, i, "recist1.1") for i in range(args.patients)]
    percist_cases = [
        Case(
            criteria="percist",
            timepoints=c.timepoints,
            options={},
            treatment_start=c.treatment_start,
        )
        for c in recist_cases
    ]
    print(f"generated {args.patients} cases in {time.perf_counter() - t0:.2f} s (not timed)")
    # Baseline measured in this run: a bare loop summing every target value once.
    t0 = time.perf_counter()
    for c in recist_cases:
        for tp in c.timepoints:
            s = Decimal(0)
            for le in tp.lesions.values():
                v = le.sa_mm if le.nodal else le.ld_mm
                if v.__class__ is Decimal:
                    s += v
    floor = time.perf_counter() - t0
    print(f"baseline (bare loop summing lesion values): {floor:.2f} s")
    r = run("RECIST 1.1", "recist", recist_cases)
    if r:
        print(f"  RECIST 1.1 / bare loop = {r / floor:.1f}x")
    p = run("PERCIST", "percist", percist_cases)
    if p:
        print(f"  PERCIST / bare loop = {p / floor:.1f}x")


if __name__ == "__main__":
    main()
