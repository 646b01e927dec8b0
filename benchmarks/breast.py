"""Benchmark: the BI-RADS outcome audit of a large historic data set (#21).

    .venv/bin/python benchmarks/breast.py                  # 200,000 exams, 3,000 outcomes
    .venv/bin/python benchmarks/breast.py --exams 50000

Writes a synthetic EXAMS.csv / OUTCOMES.csv (seeded; 30 radiologists, MG/DBT/CEM,
90 % screening) to a temporary folder and times ``oncohybrid breast audit`` the way the
command runs it (:func:`oncohybrid.services.breast.audit_files`): without grouping, by
radiologist, and by radiologist with the funnel plots. Prints seconds and exams per second
and a JSON line with the same numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import tempfile
import time
from pathlib import Path


def write_data(folder: Path, n_exams: int, n_outcomes: int, seed: int = 1) -> tuple[Path, Path]:
    rng = random.Random(seed)
    d0 = dt.date(2020, 1, 1)
    cats = ["1"] * 70 + ["2"] * 20 + ["0"] * 8 + ["3", "4A", "4B", "5"]
    patients = max(1, int(n_exams * 0.6))
    lines = ["exam_id,patient_id,date,radiologist,modality,purpose,assessment,"
             "biopsy_recommended"]
    for i in range(n_exams):
        c = rng.choice(cats)
        lines.append(f"E{i},P{rng.randrange(patients)},{d0 + dt.timedelta(rng.randrange(1500))},"
                     f"dr{rng.randrange(30)},{rng.choice(['MG', 'DBT', 'CEM'])},"
                     f"{rng.choice(['screening'] * 9 + ['diagnostic'])},{c},"
                     f"{'yes' if c in ('4A', '4B', '5') else 'no'}")
    outs = ["patient_id,date,result,cancer_type,size_mm,nodes,biopsy_performed"]
    for _ in range(n_outcomes):
        mal = rng.random() < 0.4
        outs.append(f"P{rng.randrange(patients)},{d0 + dt.timedelta(rng.randrange(1600))},"
                    f"{'malignant' if mal else 'benign'},"
                    f"{rng.choice(['invasive', 'dcis']) if mal else ''},"
                    f"{rng.randrange(3, 40) if mal else ''},"
                    f"{rng.choice(['negative', 'positive']) if mal else ''},yes")
    exams, outcomes = folder / "EXAMS.csv", folder / "OUTCOMES.csv"
    exams.write_text("\n".join(lines) + "\n")
    outcomes.write_text("\n".join(outs) + "\n")
    return exams, outcomes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exams", type=int, default=200_000)
    ap.add_argument("--outcomes", type=int, default=3_000)
    args = ap.parse_args()

    from oncohybrid.services.breast import audit_files

    folder = Path(tempfile.mkdtemp(prefix="bench-breast-"))
    exams, outcomes = write_data(folder, args.exams, args.outcomes)
    result: dict[str, float] = {}
    for label, kwargs in (("plain", {}), ("by_radiologist", {"by": "radiologist"}),
                          ("by_radiologist_plots", {"by": "radiologist",
                                                    "plots": folder / "plots"})):
        t0 = time.perf_counter()
        out = audit_files(exams, outcomes, **kwargs)
        result[label] = time.perf_counter() - t0
        print(f"{label:22s} {result[label]:6.2f} s  {args.exams / result[label]:9.0f} exams/s"
              f"  (screens {out['screening']['exams']}, recall "
              f"{out['screening']['recall_rate']:.3f})")
    print(json.dumps({"exams": args.exams, "outcomes": args.outcomes,
                      **{f"{k}_s": round(v, 3) for k, v in result.items()}}))


if __name__ == "__main__":
    main()
