"""Match lesions across timepoints: overlap + distance, globally optimal, with overrides.

Method (docs/tracking.md):

- Every lesion is brought into **baseline space**: its centroid through the
  registration's follow-up → baseline matrix, its mask (if any) resampled with
  nearest-neighbour interpolation onto the *reference grid* (the baseline CT grid, or
  the grid of the first baseline mask) and kept as a sparse set of voxel indices.
- A candidate pair (known lesion, follow-up lesion) is **allowed** when the centroid
  distance is within the size-aware gate
  ``gate_mm = max(min_gate_mm, gate_radius_factor · (r_known + r_followup))`` — r is
  the radius of the sphere of the lesion's volume, else half its LD — or when the
  masks overlap with Dice ≥ ``min_dice``.
- Its **score** is ``overlap_weight · Dice + (1 − overlap_weight) · max(0, 1 − d/gate)``
  (Dice counts 0 when either mask is missing), and the assignment maximising the total
  score over allowed pairs is found with the Hungarian algorithm
  (``scipy.optimize.linear_sum_assignment``; forbidden pairs get a prohibitive cost and
  are dropped afterwards).
- Unmatched follow-up lesions are **new**; known lesions without a partner are
  **disappeared** at that timepoint.
- **Chains**: at timepoint k the known lesions are *all* lesions seen at timepoints
  < k, each represented by its most recent observation. A lesion that vanished and
  came back therefore keeps its id, and a lesion new at TP2 is tracked into TP3.
- **Overrides** (physician decisions) are applied first and take precedence: forced
  matches are removed from the optimisation, forced-new follow-up lesions become new
  tracks, forced-unmatched known lesions are reported disappeared at that timepoint.

Everything is a pure function of its inputs; results are dataclasses with
``to_json``. Persistence is somebody else's job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy.optimize import linear_sum_assignment

from oncohybrid.errors import GeometryError, InputError

__all__ = [
    "LesionObservation",
    "Match",
    "MatchParams",
    "NewLesion",
    "Override",
    "OverrideKind",
    "TimepointLesions",
    "TimepointMatch",
    "TrackingResult",
    "track_lesions",
]

_FORBIDDEN = 1e6


@dataclass(frozen=True)
class LesionObservation:
    """One detected lesion at one timepoint, in that timepoint's own space.

    ``label`` identifies it within its timepoint (any string, e.g. a segment number).
    ``centroid_lps_mm`` is in the timepoint's frame (LPS mm). ``mask`` is an optional
    ``highdicom.Volume`` (non-zero = lesion) on that timepoint's grid. ``volume_ml``
    or ``ld_mm`` size the distance gate; without both, the mask's volume is used.
    """

    label: str
    centroid_lps_mm: tuple[float, float, float] | np.ndarray
    volume_ml: float | None = None
    ld_mm: float | None = None
    mask: Any = None


@dataclass(frozen=True)
class TimepointLesions:
    """The lesions of one timepoint and how to map them to baseline space.

    ``registration`` is an ``oncohybrid.imaging.register.Registration`` (follow-up →
    baseline) or anything with a 4×4 ``matrix_lps`` and, for masks, an ITK
    ``transform``; None means the timepoint is already in baseline space (baseline
    itself, or scans sharing the baseline position).
    """

    lesions: Sequence[LesionObservation]
    registration: Any = None
    name: str | None = None


class OverrideKind(StrEnum):
    MATCH = "match"
    NEW = "new"
    UNMATCHED = "unmatched"


@dataclass(frozen=True)
class Override:
    """A physician decision for one timepoint (index into the timepoint list, ≥ 1).

    - ``MATCH``: follow-up ``label`` is lesion ``lesion_id``.
    - ``NEW``: follow-up ``label`` is a new lesion (``lesion_id`` optionally names it).
    - ``UNMATCHED``: known lesion ``lesion_id`` has no partner at this timepoint.
    """

    kind: OverrideKind
    timepoint: int
    label: str | None = None
    lesion_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class MatchParams:
    """Tuning of the matcher; defaults are documented in docs/tracking.md."""

    min_gate_mm: float = 20.0
    gate_radius_factor: float = 1.5
    overlap_weight: float = 0.5
    min_dice: float = 0.05

    def __post_init__(self) -> None:
        if self.min_gate_mm <= 0 or self.gate_radius_factor < 0:
            raise InputError("MatchParams: min_gate_mm must be > 0, gate_radius_factor >= 0")
        if not 0.0 <= self.overlap_weight <= 1.0 or not 0.0 < self.min_dice <= 1.0:
            raise InputError("MatchParams: overlap_weight in [0, 1] and min_dice in (0, 1]")


@dataclass(frozen=True)
class Match:
    lesion_id: str
    label: str
    distance_mm: float
    gate_mm: float
    dice: float | None
    iou: float | None
    score: float
    forced: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "lesion_id": self.lesion_id,
            "label": self.label,
            "distance_mm": round(self.distance_mm, 2),
            "gate_mm": round(self.gate_mm, 2),
            "dice": None if self.dice is None else round(self.dice, 4),
            "iou": None if self.iou is None else round(self.iou, 4),
            "score": round(self.score, 4),
            "forced": self.forced,
        }


@dataclass(frozen=True)
class NewLesion:
    lesion_id: str
    label: str
    forced: bool = False


@dataclass
class TimepointMatch:
    """Outcome at one follow-up timepoint (index ≥ 1)."""

    timepoint: int
    matches: list[Match] = field(default_factory=list)
    new: list[NewLesion] = field(default_factory=list)
    disappeared: list[str] = field(default_factory=list)

    @property
    def assignments(self) -> dict[str, str]:
        """Follow-up label → lesion id, for every lesion of this timepoint."""
        out = {m.label: m.lesion_id for m in self.matches}
        out.update({n.label: n.lesion_id for n in self.new})
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "timepoint": self.timepoint,
            "matches": [m.to_json() for m in self.matches],
            "new": [{"lesion_id": n.lesion_id, "label": n.label, "forced": n.forced}
                    for n in self.new],
            "disappeared": list(self.disappeared),
        }


@dataclass
class TrackingResult:
    """All timepoints. ``history[lesion_id]`` lists its label per timepoint (None = absent)."""

    timepoints: list[TimepointMatch]
    history: dict[str, list[str | None]]

    def to_json(self) -> dict[str, Any]:
        return {
            "timepoints": [t.to_json() for t in self.timepoints],
            "history": {k: list(v) for k, v in self.history.items()},
        }


# --- geometry helpers --------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    affine: np.ndarray
    shape: tuple[int, int, int]


@dataclass
class _Ref:
    """A lesion in baseline space (its most recent observation)."""

    lesion_id: str
    centroid: np.ndarray
    radius_mm: float
    voxels: np.ndarray | None


def _grid_of(obj: Any) -> _Grid:
    if isinstance(obj, _Grid):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:
        return _Grid(np.asarray(obj[0], float), tuple(int(v) for v in obj[1]))  # type: ignore[arg-type]
    shape = getattr(obj, "spatial_shape", None)
    if shape is None:
        shape = np.asarray(obj.array).shape[:3]
    return _Grid(np.asarray(obj.affine, float), tuple(int(v) for v in shape))  # type: ignore[arg-type]


def _image(arr: np.ndarray | sitk.Image, affine: np.ndarray) -> sitk.Image:
    """SimpleITK image of a (slice,row,col) array with an index → LPS affine."""
    cols = affine[:3, [2, 1, 0]]
    spacing = np.linalg.norm(cols, axis=0)
    img = arr if isinstance(arr, sitk.Image) else sitk.GetImageFromArray(np.ascontiguousarray(arr))
    img.SetSpacing([float(v) for v in spacing])
    img.SetDirection([float(v) for v in (cols / spacing).ravel()])
    img.SetOrigin([float(v) for v in affine[:3, 3]])
    return img


def _matrix(registration: Any) -> np.ndarray:
    if registration is None:
        return np.eye(4)
    m = np.asarray(getattr(registration, "matrix_lps", registration), float)
    if m.shape != (4, 4):
        raise InputError(f"registration: expected a 4x4 matrix_lps, got shape {m.shape}")
    return m


def _mask_voxels(mask: Any, registration: Any, grid: _Grid) -> np.ndarray:
    """Sorted flat indices (in ``grid``) of a follow-up mask mapped to baseline space."""
    arr = np.asarray(mask.array) != 0
    aff = np.asarray(mask.affine, float)
    nz = np.argwhere(arr)
    if len(nz) == 0:
        return np.zeros(0, np.int64)
    lo, hi = nz.min(0), nz.max(0) + 1
    m_fb = _matrix(registration)
    # Corners of the lesion's bounding box (±½ voxel) in baseline reference indices.
    corners = np.array([[a, b, c] for a in (lo[0] - .5, hi[0] - .5)
                        for b in (lo[1] - .5, hi[1] - .5) for c in (lo[2] - .5, hi[2] - .5)])
    lps_f = corners @ aff[:3, :3].T + aff[:3, 3]
    lps_b = lps_f @ m_fb[:3, :3].T + m_fb[:3, 3]
    ref_idx = (lps_b - grid.affine[:3, 3]) @ np.linalg.inv(grid.affine[:3, :3]).T
    rlo = np.maximum(np.floor(ref_idx.min(0)).astype(int) - 1, 0)
    rhi = np.minimum(np.ceil(ref_idx.max(0)).astype(int) + 2, np.asarray(grid.shape))
    if np.any(rhi <= rlo):
        return np.zeros(0, np.int64)  # mapped outside the reference grid
    same_grid = registration is None and np.allclose(aff, grid.affine) and \
        arr.shape == grid.shape
    if same_grid:
        return np.flatnonzero(arr.ravel()).astype(np.int64)
    src_aff = aff.copy()
    src_aff[:3, 3] = aff[:3, :3] @ lo + aff[:3, 3]
    src = _image(arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.uint8), src_aff)
    ref_aff = grid.affine.copy()
    ref_aff[:3, 3] = grid.affine[:3, :3] @ rlo + grid.affine[:3, 3]
    sub = rhi - rlo
    ref = _image(sitk.Image([int(sub[2]), int(sub[1]), int(sub[0])], sitk.sitkUInt8), ref_aff)
    tx = getattr(registration, "transform", None)
    if tx is None:
        if registration is not None and not np.allclose(_matrix(registration), np.eye(4)):
            # Build the ITK (baseline → follow-up) transform from the matrix.
            inv = np.linalg.inv(_matrix(registration))
            t = sitk.AffineTransform(3)
            t.SetMatrix([float(v) for v in inv[:3, :3].ravel()])
            t.SetTranslation([float(v) for v in inv[:3, 3]])
            tx = t
        else:
            tx = sitk.Transform()
    # GetArrayFromImage (a copy): a view of the temporary image would dangle.
    out = sitk.GetArrayFromImage(
        sitk.Resample(src, ref, tx, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    )
    local = np.argwhere(out != 0) + rlo
    if len(local) == 0:
        return np.zeros(0, np.int64)
    return np.sort(np.ravel_multi_index(tuple(local.T), grid.shape)).astype(np.int64)


def _radius_mm(obs: LesionObservation) -> float:
    if obs.volume_ml is not None and obs.volume_ml > 0:
        return (3 * obs.volume_ml * 1000 / (4 * math.pi)) ** (1 / 3)
    if obs.ld_mm is not None and obs.ld_mm > 0:
        return obs.ld_mm / 2
    if obs.mask is not None:
        vox_ml = abs(np.linalg.det(np.asarray(obs.mask.affine, float)[:3, :3])) / 1000
        vol = float((np.asarray(obs.mask.array) != 0).sum()) * vox_ml
        return (3 * vol * 1000 / (4 * math.pi)) ** (1 / 3)
    return 0.0


def _overlap(a: np.ndarray | None, b: np.ndarray | None) -> tuple[float | None, float | None]:
    if a is None or b is None:
        return None, None
    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - inter
    return 2 * inter / (len(a) + len(b)), inter / union


def _pair(ref: _Ref, cur: _Ref, params: MatchParams) -> tuple[bool, Match]:
    d = float(np.linalg.norm(ref.centroid - cur.centroid))
    gate = max(params.min_gate_mm, params.gate_radius_factor * (ref.radius_mm + cur.radius_mm))
    dice, iou = _overlap(ref.voxels, cur.voxels)
    allowed = d <= gate or (dice is not None and dice >= params.min_dice)
    score = params.overlap_weight * (dice or 0.0) + (1 - params.overlap_weight) * max(
        0.0, 1.0 - d / gate
    )
    return allowed, Match(ref.lesion_id, cur.lesion_id, d, float(gate), dice, iou, float(score))


# --- public API ----------------------------------------------------------------------


def _check_overrides(
    overrides: Sequence[Override], n_tp: int, labels: list[set[str]]
) -> dict[int, list[Override]]:
    by_tp: dict[int, list[Override]] = {}
    for i, ov in enumerate(overrides):
        where = f"overrides[{i}]"
        if not 1 <= ov.timepoint < n_tp:
            raise InputError(
                f"{where}.timepoint: {ov.timepoint} is not a follow-up (1..{n_tp - 1})"
            )
        if ov.kind in (OverrideKind.MATCH, OverrideKind.NEW) and (
            ov.label is None or ov.label not in labels[ov.timepoint]
        ):
            raise InputError(
                f"{where}.label: {ov.label!r} is not a lesion of timepoint {ov.timepoint}"
            )
        if ov.kind in (OverrideKind.MATCH, OverrideKind.UNMATCHED) and not ov.lesion_id:
            raise InputError(f"{where}.lesion_id: required for a {ov.kind.value!r} override")
        by_tp.setdefault(ov.timepoint, []).append(ov)
    for tp, ovs in by_tp.items():
        seen_labels = [o.label for o in ovs if o.kind != OverrideKind.UNMATCHED]
        seen_ids = [o.lesion_id for o in ovs if o.kind != OverrideKind.NEW]
        if len(set(seen_labels)) != len(seen_labels):
            raise InputError(f"overrides: a label is overridden twice at timepoint {tp}")
        if len(set(seen_ids)) != len(seen_ids):
            raise InputError(f"overrides: a lesion_id is overridden twice at timepoint {tp}")
    return by_tp


def track_lesions(
    timepoints: Sequence[TimepointLesions],
    *,
    reference_grid: Any = None,
    params: MatchParams | None = None,
    overrides: Sequence[Override] = (),
    new_id: Any = None,
) -> TrackingResult:
    """Give every lesion of every timepoint a stable id (timepoint 0 is the baseline).

    Baseline lesions keep their labels as ids. ``reference_grid`` (a Volume, a
    VolumeGeometry-like object, or ``(affine, shape)``) is the baseline grid on which
    overlaps are computed; by default the first baseline mask's grid; without any
    masks only distances are used. ``new_id(timepoint, label) -> str`` names new
    lesions (default ``"{label}@TP{timepoint}"``).

    Example
    -------
    >>> b = TimepointLesions([LesionObservation("A", (0, 0, 0), 1.0),
    ...                       LesionObservation("B", (80, 0, 0), 1.0)])
    >>> f = TimepointLesions([LesionObservation("x", (81, 2, 0), 1.2),
    ...                       LesionObservation("y", (0, -90, 0), 0.5)])
    >>> r = track_lesions([b, f])
    >>> r.timepoints[0].assignments, r.timepoints[0].disappeared
    ({'x': 'B', 'y': 'y@TP1'}, ['A'])
    """
    params = params or MatchParams()
    if not timepoints:
        raise InputError("timepoints: at least the baseline is required")
    labels = []
    for k, tp in enumerate(timepoints):
        ls = [o.label for o in tp.lesions]
        if len(set(ls)) != len(ls):
            raise InputError(f"timepoints[{k}]: duplicate lesion labels")
        labels.append(set(ls))
    by_tp = _check_overrides(overrides, len(timepoints), labels)
    name_new = new_id or (lambda tp, label: f"{label}@TP{tp}")

    grid: _Grid | None = None
    if reference_grid is not None:
        grid = _grid_of(reference_grid)
    else:
        first = next((o.mask for o in timepoints[0].lesions if o.mask is not None), None)
        if first is not None:
            grid = _grid_of(first)

    def to_ref(obs: LesionObservation, tp: TimepointLesions, lesion_id: str) -> _Ref:
        c = np.asarray(obs.centroid_lps_mm, float).reshape(3)
        m = _matrix(tp.registration)
        centroid = m[:3, :3] @ c + m[:3, 3]
        voxels = None
        if obs.mask is not None and grid is not None:
            try:
                voxels = _mask_voxels(obs.mask, tp.registration, grid)
            except (RuntimeError, np.linalg.LinAlgError) as exc:
                raise GeometryError(f"lesion {obs.label!r}: mask cannot be resampled: {exc}") \
                    from exc
        return _Ref(lesion_id, centroid, _radius_mm(obs), voxels)

    known: dict[str, _Ref] = {}
    history: dict[str, list[str | None]] = {}
    for obs in timepoints[0].lesions:
        known[obs.label] = to_ref(obs, timepoints[0], obs.label)
        history[obs.label] = [obs.label] + [None] * (len(timepoints) - 1)

    results: list[TimepointMatch] = []
    for k in range(1, len(timepoints)):
        tp = timepoints[k]
        cur = {o.label: to_ref(o, tp, o.label) for o in tp.lesions}
        out = TimepointMatch(timepoint=k)
        free_labels = list(cur)
        free_ids = list(known)
        for ov in by_tp.get(k, []):
            if ov.kind != OverrideKind.NEW and ov.lesion_id not in known:
                raise InputError(
                    f"override at timepoint {k}: lesion_id {ov.lesion_id!r} is not a lesion "
                    "seen at an earlier timepoint"
                )
            if ov.kind == OverrideKind.MATCH:
                _, m = _pair(known[ov.lesion_id], cur[ov.label], params)  # type: ignore[index]
                out.matches.append(Match(m.lesion_id, m.label, m.distance_mm, m.gate_mm,
                                         m.dice, m.iou, m.score, forced=True))
                free_labels.remove(ov.label)  # type: ignore[arg-type]
                free_ids.remove(ov.lesion_id)  # type: ignore[arg-type]
            elif ov.kind == OverrideKind.NEW:
                lid = ov.lesion_id or name_new(k, ov.label)
                if lid in known or lid in history:
                    raise InputError(f"override at timepoint {k}: new id {lid!r} already exists")
                out.new.append(NewLesion(lid, ov.label, forced=True))  # type: ignore[arg-type]
                free_labels.remove(ov.label)  # type: ignore[arg-type]
            else:
                free_ids.remove(ov.lesion_id)  # type: ignore[arg-type]

        if free_ids and free_labels:
            cost = np.full((len(free_ids), len(free_labels)), _FORBIDDEN)
            pairs: dict[tuple[int, int], Match] = {}
            for i, lid in enumerate(free_ids):
                for j, lab in enumerate(free_labels):
                    allowed, m = _pair(known[lid], cur[lab], params)
                    if allowed:
                        cost[i, j] = 1.0 - m.score
                        pairs[(i, j)] = m
            rows, cols = linear_sum_assignment(cost)
            matched_l: set[str] = set()
            for i, j in zip(rows, cols, strict=True):
                if (i, j) in pairs:
                    out.matches.append(pairs[(i, j)])
                    matched_l.add(free_labels[j])
        else:
            matched_l = set()
        for lab in free_labels:
            if lab not in matched_l:
                lid = name_new(k, lab)
                if lid in known or lid in history:
                    raise InputError(f"timepoint {k}: generated new id {lid!r} already exists")
                out.new.append(NewLesion(lid, lab))
        matched_ids = {m.lesion_id for m in out.matches}
        out.disappeared = [lid for lid in known if lid not in matched_ids]

        # Update the known set with this timepoint's observations (most recent wins).
        for m in out.matches:
            ref = cur[m.label]
            known[m.lesion_id] = _Ref(m.lesion_id, ref.centroid, ref.radius_mm, ref.voxels)
            history[m.lesion_id][k] = m.label
        for n in out.new:
            ref = cur[n.label]
            known[n.lesion_id] = _Ref(n.lesion_id, ref.centroid, ref.radius_mm, ref.voxels)
            history[n.lesion_id] = [None] * len(timepoints)
            history[n.lesion_id][k] = n.label
        results.append(out)
    return TrackingResult(results, history)
