"""Benchmark: a tumour-board session's meeting pack + slides, seconds per case (#15).

    .venv/bin/python benchmarks/board.py                 # 20 cases (20 patients x 2 timepoints)
    .venv/bin/python benchmarks/board.py --patients 4

Generates, ingests and assesses a phantom cohort in a temporary workspace (SQLite; not
timed), puts every patient on one session's agenda, then times in the same run:

- baseline: the existing per-patient tumour-board report
  (:func:`oncohybrid.services.report.build_patient_report`) of each patient, one after
  the other — what preparing the meeting cost before, one PDF per patient;
- the meeting pack PDF alone (``board pack --pdf``);
- the meeting pack PDF and the slides (``board pack --pdf --pptx``).

Each measurement is repeated ``--repeat`` times, interleaved, and the fastest round
counts (the machine is shared). Prints seconds in total and per case, the pack's ratio to
the baseline, the page and slide counts, and a JSON line with the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=20)
    ap.add_argument("--timepoints", type=int, default=2)
    ap.add_argument("--size", default="small")
    ap.add_argument("--repeat", type=int, default=2,
                    help="Rounds of the three measurements, interleaved; the fastest counts "
                         "(a shared machine's load varies).")
    ap.add_argument("--keep", action="store_true", help="Keep the temporary workspace.")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-board-"))
    os.environ["ONCOHYBRID_HOME"] = str(home)
    try:
        run(args, home)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"workspace kept: {home}")


def run(args: argparse.Namespace, home: Path) -> None:

    from oncohybrid.config import get_settings
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services import boards, boards_pack
    from oncohybrid.services.assess import assess_patient
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.report import build_patient_report

    settings = get_settings(home)
    t0 = time.perf_counter()
    truth = generate_cohort(home / "phantom", patients=args.patients,
                            timepoints=args.timepoints, vendor="mixed", seed=3,
                            size=args.size)
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "phantom"])
    finally:
        ing.close()
    ids = [p["patient_id"] for p in truth["patients"]]
    for pid in ids:
        assess_patient(pid, settings=settings)
    board = boards.create_board(settings, "Benchmark MDT", "mixed", actor="bench")
    sid = boards.create_session(settings, board["board_id"], "2030-01-01",
                                actor="bench")["session_id"]
    for pid in ids:
        boards.add_case(settings, sid, pid, question="benchmark", actor="bench")
    setup_s = time.perf_counter() - t0
    out = home / "out"

    def timed(fn):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        result = fn()
        return time.perf_counter() - t, result

    rounds: dict[str, list[float]] = {"baseline": [], "pack": [], "pack_pptx": []}
    for _ in range(max(args.repeat, 1)):
        dt_s, _r = timed(lambda: [build_patient_report(pid, settings, out=out / f"{pid}.pdf")
                                  for pid in ids])
        rounds["baseline"].append(dt_s)
        dt_s, pdf_only = timed(lambda: boards_pack.write_pack(
            settings, sid, out / "pack-only.pdf", actor="bench"))
        rounds["pack"].append(dt_s)
        dt_s, both = timed(lambda: boards_pack.write_pack(
            settings, sid, out / "pack.pdf", pptx=out / "pack.pptx", actor="bench"))
        rounds["pack_pptx"].append(dt_s)
    baseline_s, pack_s, pack_pptx_s = (min(rounds[k]) for k in ("baseline", "pack",
                                                                 "pack_pptx"))
    print("rounds (s): " + ", ".join(f"{k} {' / '.join(f'{v:.1f}' for v in vals)}"
                                     for k, vals in rounds.items()))

    n = len(ids)
    print(f"{n} cases ({args.timepoints} timepoints, size {args.size}); set-up "
          f"(phantom, ingest, assess) {setup_s:.1f} s, not timed below")
    print(f"baseline  per-patient report PDFs : {baseline_s:7.1f} s  "
          f"{baseline_s / n:6.2f} s/case")
    print(f"board pack PDF                    : {pack_s:7.1f} s  {pack_s / n:6.2f} s/case  "
          f"({pdf_only['pages']} pages, {pack_s / baseline_s:.2f}x baseline)")
    print(f"board pack PDF + slides (PPTX)    : {pack_pptx_s:7.1f} s  "
          f"{pack_pptx_s / n:6.2f} s/case  ({both['pages']} pages, {both['slides']} slides, "
          f"{pack_pptx_s / baseline_s:.2f}x baseline)")
    print(json.dumps({"cases": n, "baseline_s": round(baseline_s, 2),
                      "pack_s": round(pack_s, 2), "pack_pptx_s": round(pack_pptx_s, 2),
                      "baseline_s_per_case": round(baseline_s / n, 3),
                      "pack_s_per_case": round(pack_s / n, 3),
                      "pack_pptx_s_per_case": round(pack_pptx_s / n, 3),
                      "pages": both["pages"], "slides": both["slides"]}))


if __name__ == "__main__":
    main()
