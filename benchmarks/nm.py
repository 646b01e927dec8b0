"""Benchmark: ``oncohybrid dosimetry`` on a clinical-size SPECT-CT cycle, and its accuracy.

    .venv/bin/python benchmarks/nm.py                  # 96×128×128 SPECT (4 mm), 4 points
    .venv/bin/python benchmarks/nm.py --small          # the test phantom (48×56×64, 4.8 mm)

Writes the phantom (CT at half the SPECT voxel size), ingests it into a temporary
workspace, then times ``services.nm.dosimetry`` with local deposition and with voxel
S-values, and prints for every VOI the relative difference of TIA and dose from the
analytic values (closed-form integrals of the phantom's kinetics, mass from its organs).
The baseline in the same run is the ingest of the same files ("× ingest").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="the test phantom instead")
    args = ap.parse_args()

    from oncohybrid.config import get_settings
    from oncohybrid.phantom.spect import SpectPhantom, analytic_tia_mbq_h, write_spect_patient
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.nm import dosimetry

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        p = SpectPhantom(patient_id="BENCH") if args.small else SpectPhantom(
            patient_id="BENCH", shape=(96, 128, 128), spacing_mm=4.0)
        t0 = time.perf_counter()
        truth = write_spect_patient(root / "data", p)
        t_write = time.perf_counter() - t0
        settings = get_settings(root / "home")
        t0 = time.perf_counter()
        ing = Ingestor(settings)
        try:
            ing.ingest_paths([root / "data"])
        finally:
            ing.close()
        t_ingest = time.perf_counter() - t0
        print(f"SPECT {p.shape} at {p.spacing_mm} mm, CT ×{p.ct_factor}; "
              f"phantom {t_write:.1f} s, ingest {t_ingest:.1f} s (baseline)")
        for method in ("local", "voxel-s"):
            t0 = time.perf_counter()
            doc = dosimetry("BENCH", 1, method=method, settings=settings, store=False)
            wall = time.perf_counter() - t0
            print(f"\n{method}: {wall:.1f} s ({wall / t_ingest:.1f} × ingest)")
            for v in doc["vois"]:
                kin = truth["kinetics"][v["name"]]
                tia = analytic_tia_mbq_h(kin)
                mass = truth["organs"][v["name"]]["mass_g"]
                dose = tia * 3.6e9 * 0.1479 * 1.602176634e-13 / (mass / 1000.0)
                print(f"  {v['name']:<13} TIA {100 * (v['tia_mbq_h'] / tia - 1):+6.2f} %  "
                      f"dose {100 * (v['dose_gy'] / dose - 1):+6.2f} %  ({v['fit']['model']})")


if __name__ == "__main__":
    main()
