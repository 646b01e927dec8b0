"""Use-case: assess one patient's response end to end (``oncohybrid assess PATIENT_ID``).

Pipeline (docs/record.md gives the reasons for every default):

1. **Timepoints** — the patient's stored series grouped by study date; each PET/CT
   timepoint is one PET series and one CT series sharing (0020,0052) *Frame of Reference
   UID* (``group_timepoints``).
2. **Per timepoint** (``analyse_timepoint``; timepoints in parallel) — *load* PET as
   SUVbw (:func:`suv_volume`; SUL by the LBM/weight ratio of the SUV scaling) and CT
   (:func:`load_series`); liver and blood-pool references and the **PERCIST threshold**
   (:mod:`oncohybrid.quant.references`; Wahl et al., JNM 2009); *detect and measure* the
   lesions (:func:`oncohybrid.detect.pet_lesions.detect_lesions`: PERCIST-threshold
   components minus physiological uptake, fainter foci the CT confirms, lesions found on
   CT alone; PET metrics and CT measurements from :mod:`oncohybrid.quant`).
3. **Tracking** — each follow-up CT registered to the baseline CT (:func:`register_ct`,
   pairs in parallel), lesions matched by overlap and distance (:func:`track_lesions`);
   tracked lesions PET lost are looked for on CT (:func:`redetect_on_ct`).
4. **Roles** — baseline targets proposed per criterion (:func:`propose_targets`); lesions
   first seen at a follow-up are ``new``.
5. **Criteria** — one case per criterion (``build_case``) assessed by the response engine.
6. **Record** — timepoints, lesions, roles, observations and assessments are stored
   (:mod:`oncohybrid.services.record`); manual observations already in the record are
   kept and, being in use, are what the case is built from.

The image analysis is pure and lives in :mod:`oncohybrid.detect`; the longitudinal types
(:class:`Course`, :class:`Track`, :class:`DetectedLesion`) in
:mod:`oncohybrid.tracking.course`. This module orchestrates and maps :class:`AssessParams`
onto their parameters.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oncohybrid.config import Settings, get_settings
from oncohybrid.detect.ct_detection import CTDetectionRules, redetect_on_ct
from oncohybrid.detect.ct_lesions import CTRules
from oncohybrid.detect.pet_lesions import DetectionParams, detect_lesions
from oncohybrid.detect.physiological import PhysiologicalRules
from oncohybrid.errors import GeometryError, InputError, OncohybridError, StoreError
from oncohybrid.tracking.course import (
    Course,
    DetectedLesion,
    TimepointAnalysis,
    TimepointInput,
    Track,
    case_references,
)

__all__ = [  # the longitudinal types stay importable from here for existing callers
    "WORKERS_ENV", "AssessParams", "AssessResult", "Course", "DetectedLesion",
    "TimepointAnalysis", "TimepointInput", "Track", "analyse_and_register", "analyse_timepoint",
    "assess_patient", "assess_workers", "build_case", "case_references", "detection_params",
    "group_timepoints", "propose_roles", "reassess_from_record", "run_criteria", "track_course",
]

#: Criteria assessed when none are named.
DEFAULT_CRITERIA: tuple[str, ...] = ("recist1.1", "percist", "lugano")

#: Criteria the pipeline can build a case for, by case family.
FAMILIES: dict[str, str] = {
    "recist1.1": "recist",
    "irecist": "recist",
    "choi": "recist",
    "percist": "percist",
    "eortc": "eortc",
    "lugano": "lugano",
    "lugano-pet": "lugano",
    "lugano-ct": "lugano",
    "lyric": "lugano",
    "recip": "recip",
}
#: Target-selection rule used for each family (response.selection criteria).
_SELECTION = {"recist": "recist1.1", "percist": "percist", "eortc": "percist",
              "lugano": "lugano", "recip": "percist"}
#: Criteria whose per-lesion roles the record keeps (the selection rules above).
ROLE_CRITERIA = tuple(dict.fromkeys(_SELECTION.values()))


@dataclass(frozen=True)
class AssessParams:
    """Pipeline parameters (documented in docs/record.md)."""

    min_volume_ml: float = 0.5
    connectivity: int = 26
    physiological_min_mtv_ml: float = 150.0
    organ_smoothing_mm: float = 4.0
    organ_uptake_x_liver: float = 1.3
    organ_min_volume_ml: float = 60.0
    organ_max_uptake_x_liver: float = 2.5
    ct_margin_mm: float = 10.0
    ct_min_contrast_hu: float = 15.0
    ct_max_band_hu: float = 100.0
    register_resolution_mm: float = 5.0
    #: Second detection tier: foci above this fraction of the PERCIST threshold (and
    #: above low_threshold_min_x_liver x liver SUVmean) count when the CT confirms them.
    low_threshold_fraction: float = 0.75
    low_threshold_min_x_liver: float = 1.2
    #: Smallest second-tier focus: a ~10 mm lesion blurred to 6 mm FWHM stays above the
    #: faint threshold in only a few voxels, so 0.5 ml would drop it (CT decides instead).
    low_min_volume_ml: float = 0.1
    #: Largest CT lesion that may confirm a second-tier focus.
    low_max_ct_volume_ml: float = 30.0
    #: CT detection (third tier): compact lesions enclosed in lung, bone or fat that PET
    #: did not find; kept when their PET SUVmax reaches ct_detect_min_x_liver x liver
    #: SUVmean and ct_detect_min_x_background x the PET median around them.
    ct_detect: bool = True
    ct_detect_min_volume_ml: float = 0.2
    ct_detect_min_x_liver: float = 1.0
    ct_detect_min_x_background: float = 1.5
    #: Effective PET resolution (FWHM, mm) for recovery-coefficient partial-volume
    #: correction of SUVmax/SUVpeak/SULpeak; None (default) keeps the uncorrected values
    #: that PERCIST, EORTC and Deauville are defined on.
    pvc_fwhm_mm: float | None = None
    #: Reference VOIs placed by the reader, per study date (ISO) and region ("liver",
    #: "blood_pool"): LPS centre in mm. The others are placed automatically.
    reference_centres: dict[str, dict[str, tuple[float, float, float]]] = field(
        default_factory=dict)
    #: assess criteria even where the PET tracer/modality is not one they are valid for
    #: (response/applicability.py); the mismatch is then a note
    allow_tracer_mismatch: bool = False

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["reference_centres"] = {d: {r: list(c) for r, c in regions.items()}
                                    for d, regions in self.reference_centres.items()}
        return out


def ct_rules(p: AssessParams) -> CTRules:
    """The CT rules of ``p`` (:mod:`oncohybrid.detect.ct_lesions`)."""
    return CTRules(margin_mm=p.ct_margin_mm, min_contrast_hu=p.ct_min_contrast_hu,
                   max_band_hu=p.ct_max_band_hu, max_confirm_volume_ml=p.low_max_ct_volume_ml)


def detection_params(p: AssessParams) -> DetectionParams:
    """The detection parameters of ``p`` (:mod:`oncohybrid.detect.pet_lesions`)."""
    return DetectionParams(
        min_volume_ml=p.min_volume_ml, connectivity=p.connectivity,
        physiological=PhysiologicalRules(
            min_mtv_ml=p.physiological_min_mtv_ml, organ_smoothing_mm=p.organ_smoothing_mm,
            organ_uptake_x_liver=p.organ_uptake_x_liver,
            organ_min_volume_ml=p.organ_min_volume_ml,
            organ_max_uptake_x_liver=p.organ_max_uptake_x_liver),
        ct=ct_rules(p),
        low_threshold_fraction=p.low_threshold_fraction,
        low_threshold_min_x_liver=p.low_threshold_min_x_liver,
        low_min_volume_ml=p.low_min_volume_ml,
        ct_detect=p.ct_detect,
        ct_detection=CTDetectionRules(
            min_volume_ml=p.ct_detect_min_volume_ml, min_x_liver=p.ct_detect_min_x_liver,
            min_x_background=p.ct_detect_min_x_background),
        pvc_fwhm_mm=p.pvc_fwhm_mm,
    )


# ---------------------------------------------------------------------------------------
# Timepoints from the store
# ---------------------------------------------------------------------------------------


def group_timepoints(patient_id: str, settings: Settings | None = None) -> list[TimepointInput]:
    """The patient's PET/CT timepoints from the study database, oldest first.

    One timepoint per study date; within it the PET series (modality PT) and the CT
    series sharing its Frame of Reference UID (the largest when several). Dates without
    a PET/CT pair are skipped. Raises :class:`StoreError` when nothing usable is stored.
    """
    from oncohybrid.services.segment import stored_labels_file
    from oncohybrid.store.queries import Filters, list_series, series_files

    rows = list_series(Filters(patient_id=patient_id), settings)
    if not rows:
        raise StoreError(f"patient {patient_id}: no stored series (ingest the studies first)")
    by_date: dict[str, list[dict]] = {}
    for r in rows:
        key = r["study_date"] or r["date"]
        if key is None:
            continue
        by_date.setdefault(key, []).append(r)
    out: list[TimepointInput] = []
    for date in sorted(by_date):
        series = by_date[date]
        pets = sorted((r for r in series if r["modality"] == "PT"),
                      key=lambda r: -(r["instances"] or 0))
        for pet in pets:
            cts = sorted(
                (r for r in series if r["modality"] == "CT"
                 and r["frame_of_reference_uid"] == pet["frame_of_reference_uid"]),
                key=lambda r: -(r["instances"] or 0),
            )
            if not cts:
                continue
            ct = cts[0]
            out.append(TimepointInput(
                date=dt.date.fromisoformat(date),
                pet_files=series_files(pet["series_uid"], settings),
                ct_files=series_files(ct["series_uid"], settings),
                study_uid=pet["study_uid"],
                pet_series_uid=pet["series_uid"],
                ct_series_uid=ct["series_uid"],
                frame_of_reference_uid=pet["frame_of_reference_uid"],
                ai_labels_file=stored_labels_file(settings or get_settings(),
                                                  pet["series_uid"]),
            ))
            break
    if not out:
        raise StoreError(
            f"patient {patient_id}: no PET/CT timepoint (a PT and a CT series sharing a "
            "Frame of Reference UID on one date)"
        )
    return out


# ---------------------------------------------------------------------------------------
# One timepoint
# ---------------------------------------------------------------------------------------


def analyse_timepoint(tp: TimepointInput, params: AssessParams | None = None,
                      timings: dict[str, float] | None = None) -> TimepointAnalysis:
    """SUV, CT, references, lesions (PET metrics + CT measurements) of one timepoint.

    The four phases (:func:`load_pet`, :func:`load_ct`, :func:`place_references`,
    :func:`detect_timepoint`) in order; :func:`analyse_and_register` runs the same phases as
    a task graph so that one timepoint's CT loads while another's lesions are detected.
    """
    p = params or AssessParams()
    clock = _Clock(timings)
    pet = load_pet(tp, clock)
    ct = load_ct(tp, clock)
    refs = place_references(tp, pet, ct, p, clock)
    return detect_timepoint(tp, pet, ct, refs, p, clock)


@dataclass
class LoadedPet:
    """A timepoint's PET as read: datasets (the SEG's source images), SUVbw volume, SUL/SUV."""

    datasets: list[Any]
    volume: Any
    sul_per_suv: float | None


@dataclass
class PlacedReferences:
    """Liver and blood-pool VOIs, the PERCIST threshold, AI labels and the notes so far."""

    liver: Any
    blood_pool: Any
    threshold: Any
    ai_labels: Any
    notes: list[str]


def load_pet(tp: TimepointInput, clock: _Clock) -> LoadedPet:
    """Phase 1: the PET series as SUVbw (:func:`suv_volume`), SUL/SUV from its LBM factor."""
    from oncohybrid.dicom.reading import read_datasets
    from oncohybrid.dicom.suv import Normalisation, suv_volume

    with clock("load"):
        # Read once (as suv_volume reads files) and keep the datasets: the mask SEG of the
        # record needs the PET headers, which it re-read from disk before (#11).
        pet_datasets = read_datasets(tp.pet_files)
        vol, scaling = suv_volume(pet_datasets, normalisation=Normalisation.BW)
        f = scaling.factors
        sul_per_suv = None
        if Normalisation.BW in f and Normalisation.LBM_JANMA in f:
            sul_per_suv = f[Normalisation.LBM_JANMA] / f[Normalisation.BW]
    return LoadedPet(pet_datasets, vol, sul_per_suv)


def load_ct(tp: TimepointInput, clock: _Clock) -> Any:
    """Phase 2: the CT series (:func:`load_series`)."""
    from oncohybrid.dicom.volume import load_series

    with clock("load"):
        return load_series(tp.ct_files)


def place_references(tp: TimepointInput, pet: LoadedPet, ct: Any, p: AssessParams,
                     clock: _Clock) -> PlacedReferences:
    """Phase 3: liver and blood-pool references and the PERCIST threshold (Wahl 2009)."""
    from oncohybrid.imaging.resample import resample_to
    from oncohybrid.quant.references import (
        blood_pool_reference,
        liver_reference,
        percist_threshold,
    )

    vol, sul_per_suv = pet.volume, pet.sul_per_suv
    notes: list[str] = []
    with clock("references"):
        ct_on_pet = resample_to(ct, vol, default=-1000.0).array
        liver = blood = threshold = None
        manual = p.reference_centres.get(tp.date.isoformat(), {})
        ai_labels, ai_vois = _ai_labels(tp, vol, notes)
        centres = {**{k: v.centre_lps_mm for k, v in ai_vois.items()}, **manual}
        try:
            liver = _from_ai(liver_reference(vol, ct=ct_on_pet, sul_per_suv=sul_per_suv,
                                             centre_lps_mm=centres.get("liver")),
                             ai_vois.get("liver") if "liver" not in manual else None,
                             ai_labels, notes)
        except GeometryError as exc:
            notes.append(f"liver reference unavailable: {exc}")
        try:
            blood = _from_ai(blood_pool_reference(vol, ct=ct_on_pet, sul_per_suv=sul_per_suv,
                                                  centre_lps_mm=centres.get("blood_pool")),
                             ai_vois.get("blood_pool") if "blood_pool" not in manual else None,
                             ai_labels, notes)
        except GeometryError as exc:
            notes.append(f"blood-pool reference unavailable: {exc}")
        liver_ok = liver is not None and liver.inside_image and not liver.notes
        if liver is None and blood is None:
            raise InputError(f"{tp.date}: neither a liver nor a blood-pool reference could be "
                             f"placed ({'; '.join(notes)}); PERCIST thresholding is impossible: "
                             f"give reader-placed centres (--liver-centre {tp.date}=X,Y,Z or "
                             f"--blood-pool-centre {tp.date}=X,Y,Z, LPS mm)")
        threshold = percist_threshold(liver, blood, sul_per_suv=sul_per_suv,
                                      liver_usable=liver_ok or blood is None)
        if threshold.reference == "blood_pool":
            why = "not placed" if liver is None else "; ".join(liver.notes) or "not usable"
            notes.append(f"PERCIST threshold from the blood pool: the liver reference is {why}")
    return PlacedReferences(liver, blood, threshold, ai_labels, notes)


def detect_timepoint(tp: TimepointInput, pet: LoadedPet, ct: Any, refs: PlacedReferences,
                     p: AssessParams, clock: _Clock) -> TimepointAnalysis:
    """Phase 4: lesions detected and measured (:func:`detect_lesions`, or the AI labels)."""
    vol, sul_per_suv = pet.volume, pet.sul_per_suv
    liver, blood, threshold, ai_labels = refs.liver, refs.blood_pool, refs.threshold, \
        refs.ai_labels
    notes = list(refs.notes)
    from_ai = None
    if ai_labels is not None:
        from oncohybrid.services.segment import ai_lesions

        with clock("segmentation"):
            from_ai = ai_lesions(vol, ct, ai_labels, sul_per_suv, detection_params(p))
    if from_ai is not None:  # the model's lesion labels replace the threshold detection
        from oncohybrid.detect.pet_lesions import LesionDetection

        found = LesionDetection(from_ai[0], from_ai[1], {
            "method": "ai-label", "model": ai_labels.model,
            "n_components": len(from_ai[0]), "n_lesions": len(from_ai[0])})
    else:
        found = detect_lesions(vol, ct, threshold, None if liver is None else liver.suv_mean,
                               sul_per_suv, detection_params(p), stage=clock)
    notes.extend(found.notes)
    lesions = found.lesions
    seg_json = {**found.segmentation, "physiological_exclusion": "docs/record.md"}
    # provenance of the threshold: where its reference VOIs were placed
    for key, region in (("liver_reference", liver), ("blood_pool_reference", blood)):
        if region is not None:
            seg_json[key] = {"shape": region.shape, "placement": region.placement,
                             "centre_lps_mm": [round(v, 2) for v in region.centre_lps_mm],
                             "anatomy_checks": list(region.anatomy_checks)}
        else:  # why it is missing (e.g. an automatic VOI whose anatomy was not proven)
            name = key.split("_reference")[0].replace("_", "-")
            seg_json[key] = {"unavailable": next(
                (n for n in notes if n.startswith(f"{name} reference unavailable")),
                "not placed")}
    seg_json["percist_threshold_reference"] = threshold.reference
    return TimepointAnalysis(tp, ct, sul_per_suv, liver, blood, threshold, lesions, seg_json,
                             notes, pet=vol, pet_datasets=pet.datasets)


def _ai_labels(tp: TimepointInput, pet: Any, notes: list[str]) -> tuple[Any, dict[str, Any]]:
    """The AI label SEG stored for the timepoint's PET series (issue #18) and the PERCIST
    reference VOIs its organ labels place: ``(labels or None, {region: OrganVoi})``."""
    if tp.ai_labels_file is None:
        return None, {}
    from oncohybrid.services.segment import ai_reference_vois, read_timepoint_labels

    try:
        labels = read_timepoint_labels(tp.ai_labels_file, pet)
        return labels, ai_reference_vois(labels, pet)
    except OncohybridError as exc:
        notes.append(f"AI labels not used: {exc}")
        return None, {}


def _from_ai(region: Any, voi: Any, labels: Any, notes: list[str]) -> Any:
    """A reference region placed at an AI organ label's centre, with that provenance
    (placement ``ai-organ-label``; the label is its anatomy check)."""
    if voi is None:
        return region
    import dataclasses

    why = voi.provenance(labels.model)
    notes.append(why)
    extra = () if voi.fits else (f"the PERCIST VOI does not fit inside the AI label "
                                 f"'{voi.label}'",)
    return dataclasses.replace(region, placement="ai-organ-label", anatomy_checks=(why,),
                               notes=(*region.notes, *extra))


#: Environment variable: threads ``assess`` uses when ``workers`` is not given.
WORKERS_ENV = "ONCOHYBRID_ASSESS_WORKERS"


def assess_workers(n_tasks: int, workers: int | None = None) -> int:
    """Threads for ``n_tasks`` independent tasks: ``workers``, else ``$ONCOHYBRID_ASSESS_WORKERS``,
    else the CPU count; never more than the tasks, at least 1.

    Threads, not processes: the heavy work (SimpleITK filters and registration, NumPy,
    SciPy ndimage, pydicom pixel decoding) runs in C with the GIL released, and the
    volumes need not be copied between processes.
    """
    if workers is None:
        env = os.environ.get(WORKERS_ENV, "").strip()
        if env:
            try:
                workers = int(env)
            except ValueError:
                raise InputError(f"${WORKERS_ENV}: expected a whole number of threads, "
                                 f"got {env!r}") from None
        else:
            workers = os.cpu_count() or 1
    return max(1, min(workers, n_tasks))


def _map_ordered(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> list[Any]:
    """``[fn(x) for x in items]`` on ``workers`` threads; results in order, and the first
    failure in item order is raised (as the sequential loop would), the rest cancelled."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="assess")
    try:
        futures = [pool.submit(fn, x) for x in items]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def analyse_and_register(patient_id: str, inputs: Sequence[TimepointInput],
                         params: AssessParams | None = None,
                         timings: dict[str, float] | None = None, *,
                         workers: int | None = None
                         ) -> tuple[list[TimepointAnalysis], list[Any]]:
    """Every timepoint analysed (:func:`analyse_timepoint`) and every follow-up CT
    registered to the baseline CT (:func:`register_ct`): ``(analyses, [None, reg_1, ...])``.

    With one worker, in order (timepoints, then registrations). With more, the phases of
    every timepoint and the registrations run as a task graph on that many threads
    (:func:`_analyse_graph`): a registration starts once its two CTs are read, and a core
    freed by one timepoint takes a phase of another. The results do not depend on the
    threads; stage timings are summed over them. An error names the patient and the
    timepoint; the first in timepoint order is raised, as sequentially.
    """
    from oncohybrid.imaging.register import register_ct

    p = params or AssessParams()
    timings = timings if timings is not None else {}
    n = len(inputs)
    if n == 0:
        return [], []

    def analyse(k: int) -> tuple[TimepointAnalysis, dict[str, float]]:
        own: dict[str, float] = {}  # per task; merged in timepoint order below
        try:
            return analyse_timepoint(inputs[k], p, own), own
        except OncohybridError as exc:
            raise type(exc)(f"patient {patient_id}, timepoint {inputs[k].date}: {exc}") from exc

    def register(base_ct: Any, ct: Any) -> tuple[Any, dict[str, float]]:
        own: dict[str, float] = {}
        with _Clock(own)("registration"):
            reg = register_ct(base_ct, ct, resolution_mm=p.register_resolution_mm)
        return reg, own

    w = assess_workers(2 * n - 1, workers)  # one timepoint: sequential
    if w <= 1:
        done = [analyse(k) for k in range(n)]
        regs_done = [register(done[0][0].ct, done[k][0].ct) for k in range(1, n)]
    else:
        done, regs_done = _analyse_graph(patient_id, inputs, p, w, register)
    for _result, own in (*done, *regs_done):
        for stage, v in own.items():
            timings[stage] = timings.get(stage, 0.0) + v
    return [a for a, _own in done], [None, *(r for r, _own in regs_done)]


class _Failed:
    """An exception caught in a task of the graph, carried to its dependents and raised by
    :func:`_analyse_graph` in the order the sequential path would have met it."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _analyse_graph(patient_id: str, inputs: Sequence[TimepointInput], p: AssessParams,
                   workers: int, register: Callable[[Any, Any], tuple[Any, dict[str, float]]]
                   ) -> tuple[list[tuple[TimepointAnalysis, dict[str, float]]],
                              list[tuple[Any, dict[str, float]]]]:
    """The timepoints' phases and the registrations as one task graph on ``workers`` threads.

    Per timepoint k: ``ct-k`` (:func:`load_ct`) and ``pet-k`` (:func:`load_pet`), then
    ``refs-k`` (:func:`place_references`) and ``tp-k`` (:func:`detect_timepoint`); each
    follow-up's registration ``reg-k`` needs only ``ct-0`` and ``ct-k``. Finer tasks than
    whole timepoints keep both cores busy to the end (3 timepoints on 2 cores left one core
    idle for a whole timepoint). Ready tasks start by priority (:func:`_run_graph`):
    timepoint by timepoint, phase by phase, so that while one thread places the references
    and detects the lesions of timepoint k (NumPy/SciPy/SimpleITK, mostly without the GIL)
    the other reads the files of timepoint k + 1 (pydicom's header parsing holds the GIL:
    two threads reading at once ran no faster than one); a registration comes after its
    follow-up's detection, so the last one overlaps the last timepoint's detection.
    Every phase is the one
    :func:`analyse_timepoint` runs, on the same inputs, so the results do not depend on the
    threads. A failure is carried to the tasks that depend on it and raised as
    sequentially: the first timepoint's first failing phase, then registrations in order.
    """
    n = len(inputs)

    def task(k: int | None, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            for a in args:
                if isinstance(a, _Failed):
                    return a
            own: dict[str, float] = {}
            try:
                return fn(_Clock(own), *(a[0] for a in args)), own
            except OncohybridError as exc:
                if k is None:
                    return _Failed(exc)
                named = type(exc)(f"patient {patient_id}, timepoint {inputs[k].date}: {exc}")
                named.__cause__ = exc
                return _Failed(named)
            except Exception as exc:  # noqa: BLE001 - re-raised below in sequential order
                return _Failed(exc)
        return run

    graph: dict[str, tuple[tuple[int, int], Callable[..., Any], tuple[str, ...]]] = {}
    for k, tp in enumerate(inputs):
        graph[f"ct-{k}"] = ((k, 0), task(k, lambda c, tp=tp: load_ct(tp, c)), ())
        graph[f"pet-{k}"] = ((k, 1), task(k, lambda c, tp=tp: load_pet(tp, c)), ())
        graph[f"refs-{k}"] = ((k, 2), task(k, lambda c, pet, ct, tp=tp: place_references(
            tp, pet, ct, p, c)), (f"pet-{k}", f"ct-{k}"))
        graph[f"tp-{k}"] = ((k, 3), task(k, lambda c, pet, ct, refs, tp=tp: detect_timepoint(
            tp, pet, ct, refs, p, c)), (f"pet-{k}", f"ct-{k}", f"refs-{k}"))
        if k:
            # register() keeps its own stage clock: its result is (transform, timings)
            graph[f"reg-{k}"] = ((k, 4), task(None, lambda _c, base, ct: register(
                base, ct)), ("ct-0", f"ct-{k}"))
    results = _run_graph(graph, workers, halts=lambda key: not key.startswith("reg-"))
    phases = [[f"pet-{k}", f"ct-{k}", f"refs-{k}", f"tp-{k}"] for k in range(n)]
    for ph in phases:
        for key in ph:
            if isinstance(results[key], _Failed):
                raise results[key].exc
    for k in range(1, n):
        if isinstance(results[f"reg-{k}"], _Failed):
            raise results[f"reg-{k}"].exc
    done = []
    for ph in phases:  # the phases' stage timings, summed per timepoint
        own: dict[str, float] = {}
        for key in ph:
            for stage, v in results[key][1].items():
                own[stage] = own.get(stage, 0.0) + v
        done.append((results[ph[-1]][0], own))
    regs_done = [results[f"reg-{k}"][0] for k in range(1, n)]
    return done, regs_done


def _run_graph(graph: dict[str, tuple[Any, Callable[..., Any], tuple[str, ...]]],
               workers: int, halts: Callable[[str], bool] = lambda _key: True
               ) -> dict[str, Any]:
    """Run ``{key: (priority, fn, dependency keys)}`` on ``workers`` threads: a task starts
    when its dependencies are done (``fn`` gets their results in order), the ready task of
    lowest priority first. ``fn`` must not raise (the tasks of :func:`_analyse_graph` return
    a :class:`_Failed` instead). Once a task for which ``halts(key)`` fails, tasks of a
    later priority group (``priority[0]``: a later timepoint) are not started; their result
    is that failure (the run is lost anyway, as the thread pool before cancelled its queued
    work). Written here because Dask's local scheduler, like ``concurrent.futures``, takes
    no per-task priority."""
    import heapq
    import threading

    dependents: dict[str, list[str]] = {key: [] for key in graph}
    waiting = {key: len(deps) for key, (_pr, _fn, deps) in graph.items()}
    for key, (_pr, _fn, deps) in graph.items():
        for d in deps:
            dependents[d].append(key)
    ready = [(pr, key) for key, (pr, _fn, _deps) in graph.items() if not waiting[key]]
    heapq.heapify(ready)
    results: dict[str, Any] = {}
    unstarted = len(graph)
    halted: tuple[Any, _Failed] | None = None  # (priority group, its failure)
    cond = threading.Condition()

    def worker() -> None:
        nonlocal unstarted, halted
        while True:
            with cond:
                while not ready and unstarted:
                    cond.wait()
                if not ready:
                    return
                pr, key = heapq.heappop(ready)
                unstarted -= 1
                skip = halted is not None and pr[0] > halted[0]
            _pr, fn, deps = graph[key]
            if skip:
                assert halted is not None
                value: Any = halted[1]
            else:
                try:
                    value = fn(*(results[d] for d in deps))
                except BaseException as exc:  # noqa: BLE001 - never leave dependents waiting
                    value = _Failed(exc)
            with cond:
                results[key] = value
                if (isinstance(value, _Failed) and not skip and halts(key)
                        and (halted is None or pr[0] < halted[0])):
                    halted = (pr[0], value)
                for nxt in dependents[key]:
                    waiting[nxt] -= 1
                    if not waiting[nxt]:
                        heapq.heappush(ready, (graph[nxt][0], nxt))
                cond.notify_all()

    threads = [threading.Thread(target=worker, name=f"assess-{i}", daemon=True)
               for i in range(max(1, workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class _Clock:
    """Accumulates wall time per stage into a dict (for the benchmark)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings if timings is not None else {}

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self.timings, stage)


class _Stage:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + (
            time.perf_counter() - self.t0
        )


# ---------------------------------------------------------------------------------------
# Tracks: the neutral per-lesion table the cases are built from
# ---------------------------------------------------------------------------------------


def track_course(patient_id: str, analyses: Sequence[TimepointAnalysis],
                 params: AssessParams | None = None,
                 timings: dict[str, float] | None = None, *,
                 registrations: Sequence[Any] | None = None,
                 workers: int | None = 1) -> tuple[Course, Any, list[Any]]:
    """Register follow-ups to baseline, match lesions, and return the course.

    Returns ``(course, tracking_result, registrations)``; baseline lesions are named
    ``L1..Ln`` in descending SUVmax, new lesions continue the numbering.
    ``registrations``: the follow-up CTs already registered to the baseline
    (``[None, reg_1, ...]``, as :func:`analyse_and_register` returns); otherwise they are
    computed here on ``workers`` threads (:func:`assess_workers`).
    """
    from oncohybrid.imaging.register import register_ct
    from oncohybrid.tracking import LesionObservation, TimepointLesions, track_lesions

    p = params or AssessParams()
    clock = _Clock(timings)
    base = analyses[0]
    if registrations is not None:
        if len(registrations) != len(analyses):
            raise InputError(f"registrations: expected {len(analyses)} (None first), "
                             f"got {len(registrations)}")
        regs: list[Any] = list(registrations)
    else:
        regs = [None]
        with clock("registration"):
            regs.extend(_map_ordered(
                lambda a: register_ct(base.ct, a.ct, resolution_mm=p.register_resolution_mm),
                analyses[1:], assess_workers(len(analyses) - 1, workers)))
    names: list[dict[str, str]] = []
    tps = []
    for k, a in enumerate(analyses):
        if k == 0:
            name = {les.label: f"L{i}" for i, les in enumerate(a.lesions, start=1)}
        else:
            name = {les.label: f"{les.label}@{k}" for les in a.lesions}
        names.append(name)
        obs = [LesionObservation(name[les.label], les.pet.centroid_lps_mm,
                                 volume_ml=les.ct.volume_ml if les.ct else les.pet.mtv_ml,
                                 ld_mm=les.ct.ld_mm if les.ct else None, mask=les.ct_mask)
               for les in a.lesions]
        tps.append(TimepointLesions(obs, registration=regs[k], name=str(a.input.date)))
    counter = [len(analyses[0].lesions)]

    def new_id(_tp: int, _label: str) -> str:
        counter[0] += 1
        return f"L{counter[0]}"

    with clock("tracking"):
        result = track_lesions(tps, reference_grid=base.ct, new_id=new_id)
    by_name = [{names[k][les.label]: les for les in a.lesions} for k, a in enumerate(analyses)]
    with clock("ct_redetect"):
        _redetect(analyses, result, regs, by_name, p)
    tracks = []
    n = len(analyses)
    for lid, hist in result.history.items():
        first = next(k for k, lab in enumerate(hist) if lab is not None)
        les0 = by_name[first][hist[first]]
        values = [by_name[k][lab].measurements() if lab is not None else None
                  for k, lab in enumerate(hist)]
        labels = [by_name[k][lab].label if lab is not None else None for k, lab in enumerate(hist)]
        tracks.append(Track(lid, les0.site, les0.nodal, first, values, labels))
    tracks.sort(key=lambda t: (t.first, int(t.id[1:]) if t.id[1:].isdigit() else 0, t.id))
    ttv = [float(sum(les.pet.mtv_ml for les in a.lesions)) for a in analyses]
    course = Course(patient_id, [a.input.date for a in analyses],
                    [a.references() for a in analyses], tracks, ttv_ml=ttv)
    assert len(course.dates) == n
    return course, result, regs


def _redetect(analyses: Sequence[TimepointAnalysis], result: Any, regs: list[Any],
              by_name: list[dict[str, DetectedLesion]], p: AssessParams) -> None:
    """Fill tracked lesions missing on PET from CT (:func:`redetect_on_ct`), in place."""
    for lid, hist in result.history.items():
        for k in range(1, len(analyses)):
            if hist[k] is not None:
                continue
            prev = [j for j in range(k) if hist[j] is not None]
            if not prev:
                continue
            j = prev[-1]
            det = by_name[j][hist[j]]
            c = np.append(np.asarray(det.pet.centroid_lps_mm, float), 1.0)
            if det.ct_mask is not None and det.ct is not None:
                idx = np.argwhere(det.ct_mask.array > 0).mean(axis=0)
                c = det.ct_mask.affine @ np.append(idx, 1.0)
            m_j = np.eye(4) if regs[j] is None else regs[j].matrix_lps
            m_k = np.eye(4) if regs[k] is None else regs[k].matrix_lps
            pred = (np.linalg.inv(m_k) @ (m_j @ c))[:3]
            label = f"ct-{lid}"
            found = redetect_on_ct(analyses[k], det, pred, label, ct_rules(p),
                                   pvc_fwhm_mm=p.pvc_fwhm_mm)
            if found is not None:
                analyses[k].lesions.append(found)
                by_name[k][label] = found
                hist[k] = label
                analyses[k].notes.append(f"{lid}: not found on PET, re-detected on CT "
                                         f"({found.ct.ld_mm:.1f} mm)")


# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------


def propose_roles(course: Course) -> dict[str, dict[str, str]]:
    """Role per selection criterion (recist1.1, percist, lugano) and lesion id.

    Baseline lesions: :func:`propose_targets`; later lesions: ``new``.
    """
    from oncohybrid.response.selection import Candidate, propose_targets

    base = [t for t in course.tracks if t.first == 0]
    refs = course.references[0] if course.references else {}
    roles: dict[str, dict[str, str]] = {}
    for crit in ("recist1.1", "percist", "lugano"):
        cands = []
        for t in base:
            v = t.values[0] or {}
            cands.append(Candidate(
                t.id, t.site, nodal=t.nodal,
                ld_mm=_dec(v.get("ld_mm")), sa_mm=_dec(v.get("sa_mm")),
                sul_peak=_dec(v.get("sul_peak")),
            ))
        kw: dict[str, Any] = {}
        if crit == "percist":
            if "liver_sul_mean" in refs:
                kw = {"liver_sul_mean": _dec(refs["liver_sul_mean"]),
                      "liver_sul_sd": _dec(refs["liver_sul_sd"])}
            elif "blood_pool_sul_mean" in refs:
                kw = {"blood_pool_sul_mean": _dec(refs["blood_pool_sul_mean"]),
                      "blood_pool_sul_sd": _dec(refs["blood_pool_sul_sd"])}
        if crit == "recist1.1":
            kw = {"slice_thickness_mm": _dec(course.slice_thickness_mm)}
        if cands and (crit != "percist" or kw):
            sel = propose_targets(cands, crit, **kw)
            roles[crit] = {pr.id: pr.role.value for pr in sel.proposals}
        else:
            roles[crit] = {t.id: "non-target" for t in base}
        for t in course.tracks:
            if t.first > 0:
                roles[crit][t.id] = "new"
    return roles


def _dec(v: Any) -> float | None:
    """A measurement rounded to 0.01 (what the case file carries)."""
    if v is None:
        return None
    return round(float(v), 2)


def _len(values: dict[str, float | None] | None, key: str) -> float | str:
    if values is None:
        return "absent"
    v = values.get(key)
    return "not_evaluable" if v is None else round(float(v), 1)


def _val(values: dict[str, float | None] | None, key: str, nd: int = 2) -> float | str:
    if values is None:
        return "absent"
    v = values.get(key)
    return "not_evaluable" if v is None else round(float(v), nd)


def build_case(course: Course, criterion: str,
               roles: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The response case (docs/response-case.md) of ``course`` under ``criterion``."""
    key = criterion.strip().lower()
    family = FAMILIES.get(key)
    if family is None:
        raise InputError(f"--criteria: {criterion!r} cannot be assessed from images; "
                         f"supported: {', '.join(FAMILIES)}")
    roles = roles or propose_roles(course)
    crit_roles = roles[_SELECTION[family]]
    timepoints = []
    for k, date in enumerate(course.dates):
        refs = course.references[k] if k < len(course.references) else {}
        lesions = []
        for t in course.tracks:
            if k < t.first:
                continue
            role = crit_roles.get(t.id, "non-target")
            if role == "not-recorded":
                continue
            v = t.values[k]
            entry: dict[str, Any] = {"id": t.id}
            if k == t.first:
                entry.update(role=role, site=t.site, nodal=t.nodal)
            if family == "recist":
                if role == "target":
                    axis = "sa_mm" if t.nodal else "ld_mm"
                    entry[axis] = _len(v, axis)
                    if key == "choi":
                        entry["ld_mm"] = _len(v, "ld_mm")
                else:
                    entry["state"] = "absent" if v is None else (
                        "unequivocal" if role == "new" else "present")
                    if t.nodal and v is not None and role != "new":
                        entry["sa_mm"] = _len(v, "sa_mm")
                if key == "choi" and v is not None and v.get("hu_mean") is not None:
                    entry["hu_mean"] = round(float(v["hu_mean"]), 1)
            elif family in ("percist", "eortc", "recip"):
                entry["sul_peak"] = _val(v, "sul_peak")
                entry["suv_max"] = _val(v, "suv_max")
                if v is not None and v.get("tlg_suv_ml") is not None:
                    entry["tlg"] = round(float(v["tlg_suv_ml"]), 1)
            else:  # lugano family
                entry["ldi_mm"] = _len(v, "ld_mm")
                entry["sdi_mm"] = _len(v, "sa_mm")
                entry["suv_max"] = _val(v, "suv_max")
            lesions.append(entry)
        tp: dict[str, Any] = {"date": date.isoformat(), "lesions": lesions}
        if family in ("percist", "eortc", "lugano", "recip"):
            tp["references"] = {n: round(float(x), 3) for n, x in refs.items()}
        if family == "recist":
            tp["modality"] = "CT"
            if k == 0:
                tp["slice_thickness_mm"] = course.slice_thickness_mm
        if family == "recip":
            tp["ttv_ml"] = round(course.ttv_ml[k], 2) if k < len(course.ttv_ml) else 0
            tp["new_lesions"] = any(t.first == k and k > 0 for t in course.tracks)
        timepoints.append(tp)
    return {
        "criteria": key,
        "patient_id": course.patient_id,
        "treatment_start": course.dates[0].isoformat(),
        "timepoints": timepoints,
    }


def run_criteria(course: Course, criteria: Iterable[str],
                 roles: dict[str, dict[str, str]] | None = None
                 ) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """criterion → (case, assessment JSON) for every criterion."""
    from oncohybrid.response import assess_case, load_case

    roles = roles or propose_roles(course)
    out = {}
    for name in criteria:
        case = build_case(course, name, roles)
        out[name] = (case, assess_case(load_case(case)).to_json())
    return out


# ---------------------------------------------------------------------------------------
# The use-case
# ---------------------------------------------------------------------------------------


@dataclass
class AssessResult:
    """Result of :func:`assess_patient`; ``to_json`` is what ``assess --json`` prints."""

    patient_id: str
    criteria: dict[str, dict[str, Any]]
    cases: dict[str, dict[str, Any]]
    course: Course
    roles: dict[str, dict[str, str]]
    tracking: dict[str, Any]
    timings_s: dict[str, float]
    notes: list[str] = field(default_factory=list)
    #: per timepoint, the reference VOIs read ({"liver": ReferenceRegion JSON or None,
    #: "blood_pool": ...}): where the references behind the cases' numbers were placed
    reference_vois: list[dict[str, Any]] = field(default_factory=list)
    #: dicom.tracer.TracerInfo JSON of each timepoint's PET series
    tracers: list[dict[str, Any] | None] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "criteria": self.criteria,
                "tracers": self.tracers}

    def best_overall(self) -> dict[str, str | None]:
        return {n: a.get("best_overall_response") for n, a in self.criteria.items()}


def parse_criteria(text: str | Sequence[str] | None) -> list[str]:
    """``"percist,recist1.1"`` → validated names (InputError names the bad one)."""
    if text is None:
        return list(DEFAULT_CRITERIA)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [s.strip().lower() for s in items if s.strip()]
    if not names:
        raise InputError("--criteria: no criterion given")
    for n in names:
        if n not in FAMILIES:
            raise InputError(f"--criteria: {n!r} cannot be assessed from images; "
                             f"supported: {', '.join(FAMILIES)}")
    return list(dict.fromkeys(names))


def assess_patient(
    patient_id: str,
    criteria: str | Sequence[str] | None = None,
    settings: Settings | None = None,
    *,
    params: AssessParams | None = None,
    store: bool = True,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> AssessResult:
    """Segment, measure, track, assess and record one patient (module docstring).

    ``workers``: threads for the per-timepoint analysis and the registrations
    (:func:`assess_workers`; 1 = sequential). The results do not depend on it.
    """
    from oncohybrid.services import record

    settings = settings or get_settings()
    names = parse_criteria(criteria)
    p = params or AssessParams()
    step = progress or (lambda _m: None)
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    with clock("store_read"):
        inputs = group_timepoints(patient_id, settings)
    dates = [tp.date.isoformat() for tp in inputs]
    for date, regions in p.reference_centres.items():
        if date not in dates:
            raise InputError(f"reference VOI for {date}: patient {patient_id} has no timepoint "
                             f"on that date (timepoints: {', '.join(dates)})")
        unknown = set(regions) - {"liver", "blood_pool"}
        if unknown:
            raise InputError(f"reference VOI for {date}: unknown region(s) "
                             f"{', '.join(sorted(unknown))} (liver, blood_pool)")
    from oncohybrid.dicom.tracer import identify_tracer
    from oncohybrid.response.applicability import check_criteria
    from oncohybrid.services.quantify import _first_header

    tracers = []
    tracer_notes = []
    for tp in inputs:
        header = _first_header(tp.pet_files)
        tracer = None if header is None else identify_tracer(header)
        tracers.append(None if tracer is None else tracer.to_json())
        try:
            warn = check_criteria(names, tracer, allow_mismatch=p.allow_tracer_mismatch)
        except InputError as exc:
            raise InputError(f"patient {patient_id}, timepoint {tp.date}: {exc}") from exc
        tracer_notes.extend(f"{tp.date}: tracer: {w}" for w in dict.fromkeys(warn))
    n_workers = assess_workers(len(inputs), workers)
    for k, tp in enumerate(inputs):
        step(f"timepoint {k} ({tp.date})")
    analyses, regs = analyse_and_register(patient_id, inputs, p, timings, workers=n_workers)
    step("tracking")
    course, tracking, regs = track_course(patient_id, analyses, p, timings,
                                          registrations=regs)
    notes = tracer_notes + [f"{a.input.date}: {n}" for a in analyses for n in a.notes]
    for k, r in enumerate(regs[1:], start=1):
        notes.extend(f"{analyses[k].input.date}: registration: {n}" for n in r.notes)
    roles = propose_roles(course)
    if store:
        with clock("store_write"):
            course = record.save_course(patient_id, analyses, course, roles, p, settings)
            roles = record.load_roles(patient_id, settings) or roles
    step("criteria")
    with clock("criteria"):
        results = run_criteria(course, names, roles)
    if store:
        with clock("store_write"):
            record.save_assessments(patient_id, results, settings)
    return AssessResult(
        patient_id=patient_id,
        criteria={n: a for n, (_c, a) in results.items()},
        cases={n: c for n, (c, _a) in results.items()},
        course=course,
        roles=roles,
        tracking=tracking.to_json(),
        timings_s=timings,
        notes=notes,
        tracers=tracers,
        reference_vois=[
            {"liver": None if a.liver is None else a.liver.to_json(),
             "blood_pool": None if a.blood_pool is None else a.blood_pool.to_json()}
            for a in analyses
        ],
    )


def reassess_from_record(settings: Settings, patient_id: str) -> dict[str, Any]:
    """Re-run the criteria of the last assessment on the record as it is now.

    Used after a physician's edit (role, match, manual measurement): the course is rebuilt
    from the observations *in use*, the references (liver/blood pool) and slice thickness
    come from the stored cases of the last assessment, and no image is re-segmented.
    Returns criterion → assessment JSON. Raises :class:`StoreError` when the patient was
    never assessed (the references come from the stored cases).
    """
    from oncohybrid.services import record as rec
    from oncohybrid.store.models_record import MEASUREMENTS

    data = rec.patient_record(patient_id, settings)
    latest = rec.latest_assessments(patient_id, settings)
    if not latest or not data["timepoints"]:
        raise StoreError(f"patient {patient_id}: no stored assessment to re-compute; "
                         "run `oncohybrid assess` first")
    dates = [t["date"] for t in data["timepoints"]]
    refs: list[dict[str, float]] = [{} for _ in dates]
    thickness = 5.0
    ttv: list[float | None] = [None] * len(dates)
    for a in latest.values():
        for tp in a["case"].get("timepoints", []):
            if tp.get("date") not in dates:
                continue
            k = dates.index(tp["date"])
            refs[k].update(tp.get("references") or {})
            if k == 0 and "slice_thickness_mm" in tp:
                thickness = float(tp["slice_thickness_mm"])
            if "ttv_ml" in tp:
                ttv[k] = float(tp["ttv_ml"])
    tracks = []
    for les in data["lesions"]:
        obs_dates = [o["date"] for o in les["observations"] if o["in_use"]]
        if not obs_dates:
            continue
        first = min(dates.index(d) for d in obs_dates)
        values: list[dict[str, float | None] | None] = [None] * len(dates)
        for k, d in enumerate(dates):
            o = next((o for o in les["observations"] if o["date"] == d and o["in_use"]), None)
            if o is not None and o["present"]:
                values[k] = {m: o.get(m) for m in MEASUREMENTS}
        tracks.append(Track(les["key"], les["site"], les["nodal"], first, values))

    def order(t: Track) -> tuple[int, int, str]:
        num = t.id[1:].split("@")[0]
        return (t.first, int(num) if num.isdigit() else 0, t.id)

    tracks.sort(key=order)
    for k in range(len(dates)):
        if ttv[k] is None:
            ttv[k] = float(sum((t.values[k] or {}).get("mtv_ml") or 0.0 for t in tracks))
    course = Course(patient_id, [dt.date.fromisoformat(d) for d in dates], refs, tracks,
                    thickness, [float(v or 0.0) for v in ttv])
    roles = rec.load_roles(patient_id, settings)
    for crit in ROLE_CRITERIA:
        roles.setdefault(crit, {})
    results = run_criteria(course, list(latest), roles)
    rec.save_assessments(patient_id, results, settings)
    return {n: a for n, (_c, a) in results.items()}
