"""Benchmark: ``oncohybrid study export`` of 10,000 synthetic patients in bounded memory.

    .venv/bin/python benchmarks/export.py                 # 1k, 5k, 10k patients, CSV, de-id
    .venv/bin/python benchmarks/export.py --sizes 1000 2000 --format parquet
    .venv/bin/python benchmarks/export.py --identified    # without de-identification

One workspace is filled with synthetic rows straight through SQLAlchemy Core (no DICOM:
the export reads the database only): per patient 2 PET/CT studies (PT + CT series,
FDG), 2 record timepoints, 3 lesions with 6 observations, a RECIST and a PERCIST
assessment, clinical data and a complete CRF form (6 fields), and one study record per
patient. Studies ``B<n>`` hold the first n patients' records. Each is exported with
``tracemalloc`` tracing, and the peak of traced Python memory is printed for each size with
its ratio to the smallest: the export reads ``PAGE_SIZE`` records at a time and drops each
page before the next, so the ratio stays near 1 while the patients grow tenfold (a
list-everything export grows with n). Wall time and output size are printed alongside.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

CRF_FORM = "baseline"
DICTIONARY = """Variable / Field Name,Form Name,Section Header,Field Type,Field Label,"Choices, \
Calculations, OR Slider Labels",Field Note,Text Validation Type OR Show Slider Number,Text \
Validation Min,Text Validation Max,Identifier?,Branching Logic (Show field only if...),\
Required Field?,Custom Alignment,Question Number (surveys only),Matrix Group Name,Matrix \
Ranking?,Field Annotation
record_id,baseline,,text,Record ID,,,,,,,,,,,,,
stage,baseline,,radio,Stage,"1, I | 2, II | 3, III | 4, IV",,,,,,,,,,,,
ecog,baseline,,text,ECOG,,,integer,0,4,,,,,,,,
ldh,baseline,,text,LDH,,,number,,,,,,,,,,
dx_date,baseline,,text,Diagnosis,,,date_ymd,,,,,,,,,,
weight,baseline,,text,Weight,,,number,,,,,,,,,,
bulky,baseline,,yesno,Bulky,,,,,,,,,,,,,
"""


def fill(settings, n: int) -> None:
    import sqlalchemy as sa

    from oncohybrid.research import redcap
    from oncohybrid.store.db import get_engine
    from oncohybrid.store.models import Patient, Series, Study
    from oncohybrid.store.models_record import (
        AssessmentRecord,
        Lesion,
        Observation,
        Timepoint,
    )
    from oncohybrid.store.models_research import (
        ResearchClinical,
        ResearchCrfForm,
        ResearchCrfValue,
        ResearchRecord,
        ResearchStudy,
    )

    eng = get_engine(settings)
    now = dt.datetime.now(dt.UTC)
    dd = redcap.parse_dictionary(DICTIONARY)
    chunk = 1000
    with eng.begin() as c:
        for i0 in range(0, n, chunk):
            ids = range(i0 + 1, min(n, i0 + chunk) + 1)
            c.execute(sa.insert(Patient), [
                {"id": i, "patient_id": f"SYN{i:06d}", "issuer_of_patient_id": "",
                 "patient_name": f"Synthetic^{i}", "patient_sex": "MF"[i % 2],
                 "patient_birth_date": dt.date(1950 + i % 40, 1 + i % 12, 1 + i % 28),
                 "n_studies": 2, "created_at": now} for i in ids])
            studies, series, tps, les, obs, ass = [], [], [], [], [], []
            for i in ids:
                d0 = dt.date(2024, 1, 1) + dt.timedelta(days=i % 300)
                for k in range(2):
                    spk = 2 * i + k
                    date = d0 + dt.timedelta(days=42 * k)
                    studies.append({"id": spk, "study_instance_uid": f"2.25.{i}.{k}",
                                    "patient_pk": i, "study_date": date, "created_at": now})
                    for m, mod in enumerate(("PT", "CT")):
                        series.append({"id": 4 * i + 2 * k + m, "study_pk": spk,
                                       "series_instance_uid": f"2.25.{i}.{k}.{m}",
                                       "modality": mod, "number_of_instances": 1,
                                       "radiopharmaceutical": "Fluorodeoxyglucose"
                                       if mod == "PT" else None, "created_at": now})
                    tps.append({"id": spk, "patient_pk": i, "tp_index": k,
                                "label": "baseline" if k == 0 else "follow-up 1",
                                "scan_date": date, "days_since_baseline": 42 * k,
                                "created_at": now})
                for j in range(3):
                    lpk = 3 * i + j
                    les.append({"id": lpk, "patient_pk": i, "key": f"L{j + 1}",
                                "tracking_uid": f"2.25.9{i}.{j}", "site": "lymph node",
                                "nodal": True, "first_timepoint_pk": 2 * i, "created_at": now})
                    for k in range(2):
                        obs.append({"lesion_pk": lpk, "timepoint_pk": 2 * i + k,
                                    "study_instance_uid": f"2.25.{i}.{k}", "source": "automatic",
                                    "in_use": True, "present": True, "ld_mm": 20.0 - 5 * k + j,
                                    "suv_max": 12.0 - 4 * k + j, "suv_peak": 10.0 - 3 * k + j,
                                    "mtv_ml": 8.0 - 3 * k, "tlg_suv_ml": 40.0 - 20 * k,
                                    "methods": {}, "reader": "oncohybrid",
                                    "measured_at": now})
                for crit in ("recist1.1", "percist"):
                    ass.append({"patient_pk": i, "criterion": crit, "run_uid": f"2.25.7{i}",
                                "case_json": {}, "result_json": {"timepoints": [
                                    {"date": (d0 + dt.timedelta(days=42)).isoformat(),
                                     "overall": "PR"}]}, "best_overall_response": "PR",
                                "software_version": "bench", "created_at": now})
            for table, rows in ((Study, studies), (Series, series), (Timepoint, tps),
                                (Lesion, les), (Observation, obs), (AssessmentRecord, ass)):
                c.execute(sa.insert(table), rows)
        sizes = [int(x) for x in ARGS.sizes]
        for size in sizes:
            c.execute(sa.insert(ResearchStudy), [{
                "key": f"B{size}", "title": f"benchmark {size}", "repeating": {},
                "dictionary": redcap.to_json(dd), "created_by": "bench", "created_at": now}])
            spk = c.execute(sa.select(ResearchStudy.id).where(
                ResearchStudy.key == f"B{size}")).scalar_one()
            for i0 in range(0, size, chunk):
                ids = range(i0 + 1, min(size, i0 + chunk) + 1)
                c.execute(sa.insert(ResearchRecord), [
                    {"study_pk": spk, "record_id": str(i), "patient_pk": i, "created_at": now}
                    for i in ids])
                rec = dict(c.execute(sa.select(ResearchRecord.patient_pk, ResearchRecord.id)
                                     .where(ResearchRecord.study_pk == spk,
                                            ResearchRecord.patient_pk.in_(list(ids)))).all())
                c.execute(sa.insert(ResearchClinical), [
                    {"study_pk": spk, "patient_pk": i, "field": "tumour_type",
                     "value": "lymphoma"} for i in ids])
                c.execute(sa.insert(ResearchCrfForm), [
                    {"record_pk": rec[i], "form": CRF_FORM, "instance": 1,
                     "status": "complete", "locked": False, "updated_at": now} for i in ids])
                c.execute(sa.insert(ResearchCrfValue), [
                    {"record_pk": rec[i], "form": CRF_FORM, "instance": 1, "field": f,
                     "value": v} for i in ids for f, v in (
                        ("stage", str(1 + i % 4)), ("ecog", str(i % 3)), ("ldh", "250"),
                        ("dx_date", "2023-12-01"), ("weight", "70"), ("bulky", str(i % 2)))])


def main() -> None:
    from oncohybrid.config import get_settings
    from oncohybrid.services import research

    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings(Path(tmp) / "home")
        t0 = time.perf_counter()
        research.list_studies(settings=settings)  # creates the schema
        fill(settings, max(int(x) for x in ARGS.sizes))
        print(f"filled {max(int(x) for x in ARGS.sizes)} synthetic patients in "
              f"{time.perf_counter() - t0:.1f} s (page size {research.PAGE_SIZE})")
        # Warm-up (untraced) on the largest study: imports and caches (pydicom for tracer
        # names, SQLAlchemy statement caches) and the key store's first-use rows (pseudonym,
        # shift, UID map of every patient) would otherwise count in some sizes only; after
        # it, every size measures the same steady-state work.
        t = time.perf_counter()
        research.export_study(f"B{max(int(x) for x in ARGS.sizes)}", Path(tmp) / "warm",
                              fmt=ARGS.format, deidentify=not ARGS.identified,
                              settings=settings)
        print(f"warm-up export (untraced, creates the key-store rows): "
              f"{time.perf_counter() - t:.1f} s")
        results = []
        for size in (int(x) for x in ARGS.sizes):
            out = Path(tmp) / f"out{size}"
            tracemalloc.start()
            t = time.perf_counter()
            res = research.export_study(f"B{size}", out, fmt=ARGS.format,
                                        deidentify=not ARGS.identified, settings=settings)
            wall = time.perf_counter() - t
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
            assert res["patients"] == size, res
            results.append({"patients": size, "peak_mib": peak / 2**20, "seconds": wall,
                            "output_mb": mb, "rows": res["rows"]})
            print(f"{size:>6} patients: peak traced memory {peak / 2**20:7.1f} MiB, "
                  f"{wall:6.1f} s, output {mb:6.1f} MB, measurements "
                  f"{res['rows']['measurements']}")
        base = results[0]["peak_mib"]
        for r in results:
            r["peak_ratio"] = r["peak_mib"] / base
        print("peak ratio to the smallest: " + ", ".join(
            f"{r['patients']}: {r['peak_ratio']:.2f}" for r in results))
        if ARGS.json:
            print(json.dumps(results))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["1000", "5000", "10000"])
    ap.add_argument("--format", default="csv", choices=("csv", "parquet"))
    ap.add_argument("--identified", action="store_true")
    ap.add_argument("--json", action="store_true")
    ARGS = ap.parse_args()
    sys.exit(main())
