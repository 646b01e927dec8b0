"""Analytic synthetic torso CTs with lesions for registration/tracking tests.

Independent of the code under test: anatomy is a set of analytic shapes (body,
fat ring, lungs, spine, liver, kidneys, lesions) evaluated on each timepoint's grid.
Repositioning is a rigid motion (R, t) of the *patient*: a point x of the baseline
patient sits at R·x + t at follow-up, so the ground-truth follow-up → baseline map
is x_b = Rᵀ·(x_f − t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import highdicom as hd
import numpy as np

SPACING_MM = (5.0, 4.0, 4.0)  # slice, row, column
SHAPE = (48, 84, 100)


@dataclass
class Lesion:
    gid: str
    centre_mm: np.ndarray  # baseline patient coordinates (LPS)
    radii_mm: np.ndarray  # per axis (L, P, S) semi-axes
    hu: float = 70.0


@dataclass
class TimepointTruth:
    ct: hd.Volume
    rotation: np.ndarray  # 3x3
    shift_mm: np.ndarray
    lesions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    masks: dict[str, hd.Volume] = field(default_factory=dict)

    def to_baseline(self, pts: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(pts) - self.shift_mm) @ self.rotation


def rot_z(deg: float) -> np.ndarray:
    t = math.radians(deg)
    return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])


def grid_affine(shape=SHAPE, spacing=SPACING_MM, for_z0: float = 0.0) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, 0] = [0, 0, spacing[0]]
    aff[:3, 1] = [0, spacing[1], 0]
    aff[:3, 2] = [spacing[2], 0, 0]
    aff[:3, 3] = [
        -(shape[2] - 1) * spacing[2] / 2,
        -(shape[1] - 1) * spacing[1] / 2,
        for_z0 - (shape[0] - 1) * spacing[0] / 2,
    ]
    return aff


def _ell(p: np.ndarray, c, r) -> np.ndarray:
    return (((p - np.asarray(c, float)) / np.asarray(r, float)) ** 2).sum(-1) <= 1.0


def _anatomy(p: np.ndarray) -> np.ndarray:
    """HU of the baseline patient at points p (n, 3), LPS mm."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    hu = np.full(len(p), -1000.0)
    # Torso: elliptic cylinder whose width varies slowly with z (breaks z-symmetry).
    a = 150 + 15 * np.tanh(z / 60.0)
    b = 100 + 8 * np.sin(z / 45.0)
    body = (x / a) ** 2 + (y / b) ** 2 <= 1
    inner = (x / (a - 12)) ** 2 + (y / (b - 12)) ** 2 <= 1
    hu[body] = -90.0  # subcutaneous fat
    hu[inner] = 35.0
    lung_l = _ell(p, (70, -5, 70), (55, 65, 70))
    lung_r = _ell(p, (-70, -5, 75), (60, 65, 75))
    hu[(lung_l | lung_r) & inner] = -820.0
    heart = _ell(p, (15, -35, 35), (45, 40, 40))
    hu[heart & inner] = 45.0
    liver = _ell(p, (-55, 0, -40), (70, 60, 50))
    hu[liver & inner & ~lung_r] = 60.0
    spleen = _ell(p, (80, 30, -30), (28, 30, 40))
    hu[spleen & inner] = 50.0
    for cx in (-45, 45):
        hu[_ell(p, (cx, 45, -90), (25, 22, 45)) & inner] = 30.0
    spine = ((x / 18) ** 2 + ((y - 60) / 18) ** 2 <= 1) & inner
    hu[spine] = 450.0
    canal = ((x / 7) ** 2 + ((y - 62) / 7) ** 2 <= 1) & inner
    hu[canal] = 10.0
    aorta = (((x - 20) / 12) ** 2 + ((y - 35) / 12) ** 2 <= 1) & inner & (z < 60)
    hu[aorta] = 160.0
    # Ribs every 30 mm in z: thin bony hoops at the inner body wall.
    ring = inner & ~((x / (a - 20)) ** 2 + (y / (b - 20)) ** 2 <= 1)
    ribs = ring & (np.mod(z, 30.0) < 8) & (z > -60)
    hu[ribs] = 350.0
    return hu


def make_timepoint(
    lesions: list[Lesion],
    *,
    rotation_deg: float = 0.0,
    shift_mm=(0.0, 0.0, 0.0),
    scale: dict[str, float] | None = None,
    present: set[str] | None = None,
    noise_hu: float = 15.0,
    seed: int = 0,
    frame_uid: str = "1.2.826.0.1.3680043.10.543.1",
) -> TimepointTruth:
    """One CT of the moved patient, with per-lesion masks on the same grid."""
    rng = np.random.default_rng(seed)
    aff = grid_affine()
    r = rot_z(rotation_deg)
    t = np.asarray(shift_mm, float)
    idx = np.indices(SHAPE).reshape(3, -1).T.astype(float)
    world = idx @ aff[:3, :3].T + aff[:3, 3]
    p = (world - t) @ r  # baseline patient coordinates of each voxel centre
    hu = _anatomy(p)
    truth = TimepointTruth(ct=None, rotation=r, shift_mm=t)  # type: ignore[arg-type]
    scale = scale or {}
    for les in lesions:
        if present is not None and les.gid not in present:
            continue
        radii = les.radii_mm * scale.get(les.gid, 1.0)
        inside = _ell(p, les.centre_mm, radii)
        if not inside.any():
            continue
        hu[inside] = les.hu
        mask = inside.reshape(SHAPE)
        truth.masks[les.gid] = hd.Volume(mask.astype(np.uint8), aff, "PATIENT",
                                         frame_of_reference_uid=frame_uid)
        centre_f = r @ les.centre_mm + t
        vol_ml = float(mask.sum() * np.prod(SPACING_MM) / 1000)
        truth.lesions[les.gid] = (centre_f, np.array([vol_ml]))
    hu = hu + rng.normal(0, noise_hu, hu.shape)
    truth.ct = hd.Volume(hu.reshape(SHAPE).astype(np.float32), aff, "PATIENT",
                         frame_of_reference_uid=frame_uid)
    return truth


def default_lesions(rng: np.random.Generator, n: int = 8) -> list[Lesion]:
    """Lesions in liver, lungs, nodes and soft tissue, radii 5–15 mm."""
    sites = [(-55, 0, -40), (70, -5, 70), (-70, -5, 75), (20, 10, 0), (-30, 40, -80),
             (40, -60, -20), (-80, 20, 20), (60, 30, -60), (0, -40, -70), (-20, -30, 60)]
    out = []
    for k in range(n):
        c = np.asarray(sites[k % len(sites)], float) + rng.uniform(-15, 15, 3)
        radii = rng.uniform(5, 15) * rng.uniform(0.75, 1.25, 3)
        out.append(Lesion(f"G{k}", c, radii, hu=float(rng.uniform(60, 110))))
    return out


def score_tracking(result, gt_ids: list[dict[str, str]]) -> dict:
    """Count correct lesion decisions against ground truth.

    ``gt_ids[k]`` maps each detected label at timepoint k to its ground-truth lesion.
    A follow-up lesion's decision is correct when it joins the track of the same
    ground-truth lesion, or is declared new when that ground-truth lesion had not been
    seen before ("lesion decisions"). Separately, a known lesion reported disappeared
    is correct when its ground-truth lesion is absent at that timepoint. Detections
    whose label is not in ``gt_ids[k]`` (e.g. physiological PET uptake) are tracked
    but not scored.
    """
    track_gt: dict[str, str] = dict(gt_ids[0])
    seen = set(gt_ids[0].values())
    out = {"correct": 0, "total": 0, "disappeared_correct": 0, "disappeared_total": 0,
           "errors": []}
    for tpm in result.timepoints:
        k = tpm.timepoint
        gts = gt_ids[k]
        for m in tpm.matches:
            if m.label not in gts:
                continue
            out["total"] += 1
            if track_gt.get(m.lesion_id) == gts[m.label]:
                out["correct"] += 1
            else:
                out["errors"].append(f"TP{k}: {gts[m.label]} matched to track of "
                                     f"{track_gt.get(m.lesion_id)} (d={m.distance_mm:.1f} mm)")
        for n in tpm.new:
            if n.label not in gts:
                continue
            out["total"] += 1
            if gts[n.label] not in seen:
                out["correct"] += 1
            else:
                out["errors"].append(f"TP{k}: {gts[n.label]} called new but was seen before")
            track_gt[n.lesion_id] = gts[n.label]
        present = set(gts.values())
        for lid in tpm.disappeared:
            if lid not in track_gt:
                continue
            out["disappeared_total"] += 1
            if track_gt.get(lid) not in present:
                out["disappeared_correct"] += 1
            else:
                out["errors"].append(f"TP{k}: track {lid} ({track_gt.get(lid)}) called gone")
        seen |= present
    return out
