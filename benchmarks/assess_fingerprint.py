"""Fingerprint of ``assess`` on a phantom cohort: everything a speed change must not change.

    .venv/bin/python benchmarks/assess_fingerprint.py OUT.json [--size clinical] [--workers 1]

Generates the cohort (``--patients`` 2, ``--timepoints`` 3, seed 11, mixed vendors), ingests
it into a temporary workspace, assesses every patient (RECIST 1.1, PERCIST, Lugano) and writes
per patient: criteria, cases, roles, tracks (lesion values in full ``repr``), notes, tracking,
reference VOIs, tracers, and the label list, frame count and SHA-256 of the pixel data of
every stored lesion SEG. UIDs and times are left out. Run it at two commits (e.g. from a
``git worktree``) and compare the files: the #11 speed work was checked this way
(``cmp`` equal before and after, 1 and 2 threads).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", default="clinical", choices=["small", "clinical"])
    ap.add_argument("--patients", type=int, default=2)
    ap.add_argument("--timepoints", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="oncohybrid-fingerprint-") as tmp:
        os.environ["ONCOHYBRID_HOME"] = str(Path(tmp) / "home")
        import pydicom

        from oncohybrid.config import get_settings
        from oncohybrid.phantom import generate_cohort
        from oncohybrid.services.assess import AssessParams, assess_patient
        from oncohybrid.services.ingest import Ingestor
        from oncohybrid.store.db import dispose_engines

        truth = generate_cohort(Path(tmp) / "data", patients=args.patients,
                                timepoints=args.timepoints, vendor="mixed", seed=args.seed,
                                size=args.size)
        with Ingestor() as ing:
            ing.ingest_paths([Path(tmp) / "data"])
        fp: dict[str, dict] = {}
        for p in truth["patients"]:
            pid = p["patient_id"]
            t0 = time.perf_counter()
            res = assess_patient(pid, ["recist1.1", "percist", "lugano"], params=AssessParams(),
                                 workers=args.workers)
            print(f"{pid}: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
            tracks = [[t.id, t.site, t.nodal, t.first, repr(t.values), t.labels]
                      for t in res.course.tracks]
            segs = []
            for f in sorted(get_settings().derived_dir.rglob("*.dcm")):
                ds = pydicom.dcmread(f)
                if ds.get("Modality") != "SEG" or ds.get("PatientID") != pid:
                    continue
                segs.append({"labels": [str(s.SegmentLabel) for s in ds.SegmentSequence],
                             "n_frames": int(ds.NumberOfFrames),
                             "pixels_sha256": hashlib.sha256(ds.PixelData).hexdigest()})
            fp[pid] = {"criteria": res.criteria, "cases": res.cases, "roles": res.roles,
                       "tracks": tracks, "notes": res.notes, "tracking": res.tracking,
                       "reference_vois": res.reference_vois, "tracers": res.tracers,
                       "segs": sorted(segs, key=lambda d: json.dumps(d, sort_keys=True))}
        dispose_engines()
    args.out.write_text(json.dumps(fp, indent=1, sort_keys=True, default=str))
    print(f"written {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
