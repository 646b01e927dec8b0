"""IBSI 2 convolutional filters: response maps of an image (IBSI 2 reference manual,
arXiv:2006.05470, chapter 2 "Convolutional filters"; Whybra et al., Radiology 2024).

Arrays are in highdicom's axis order ``(z, y, x)``; ``spacing_mm`` in the same order. The
IBSI kernel axes ``k1, k2, k3`` are ``x, y, z``: a Laws code ``"E5L5S5"`` or a wavelet band
``"LHL"`` names the filter along x first, then y, then z. "2D" filters work slice by slice in
the (y, x) plane.

Boundary conditions (IBSI 2 §2.3) are ``"zero"`` (constant 0), ``"nearest"`` (edge value),
``"periodic"`` (wrap) and ``"mirror"`` (symmetric: ``d c b a | a b c d``, NumPy's
``"symmetric"`` and SciPy ndimage's ``"reflect"``).

Rotation invariance (IBSI 2 §2.4) pools the responses over the 24 right-angle rotations of
3D space (4 in-plane rotations for 2D filters); the image is rotated, filtered and rotated
back, which on a voxel grid is exactly the filter rotated by the inverse rotation.

Filters and their IBSI ids: mean (``S60F``), Laplacian of Gaussian (``L6PA``), Laws kernels
(``JTXT``) with energy map, Gabor (``Q88H``), separable wavelets (``25BO``, undecimated, à
trous for levels > 1, coefficients from PyWavelets), Simoncelli non-separable wavelet
(``PRT7``) and the Riesz transform (``AYRS``).

Example (a 3-voxel mean of an impulse spreads it evenly):

>>> import numpy as np
>>> img = np.zeros((1, 1, 5)); img[0, 0, 2] = 3.0
>>> mean_filter(img, support=3, boundary="zero", dims=2)[0, 0, 1:4].round(6).tolist()
[0.333333, 0.333333, 0.333333]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage
from scipy.signal import fftconvolve

Boundary = Literal["zero", "nearest", "periodic", "mirror"]
Pooling = Literal["max", "mean", "min"]

#: IBSI 2 boundary condition -> numpy.pad mode and scipy.ndimage mode
_PAD_MODE = {"zero": "constant", "nearest": "edge", "periodic": "wrap", "mirror": "symmetric"}
_NDI_MODE = {"zero": "constant", "nearest": "nearest", "periodic": "wrap", "mirror": "reflect"}

#: Laws 1D kernels (IBSI 2 §2.6, Table 2.2), before normalisation to unit L2 norm
_LAWS = {
    "L3": (1.0, 2.0, 1.0), "E3": (-1.0, 0.0, 1.0), "S3": (-1.0, 2.0, -1.0),
    "L5": (1.0, 4.0, 6.0, 4.0, 1.0), "E5": (-1.0, -2.0, 0.0, 2.0, 1.0),
    "S5": (-1.0, 0.0, 2.0, 0.0, -1.0), "W5": (-1.0, 2.0, 0.0, -2.0, 1.0),
    "R5": (1.0, -4.0, 6.0, -4.0, 1.0),
}


def _check(image: np.ndarray, boundary: str, dims: int) -> np.ndarray:
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"filters take a 3-D image (z, y, x), got shape {a.shape}")
    if boundary not in _PAD_MODE:
        raise ValueError(f'boundary must be one of {sorted(_PAD_MODE)}, got "{boundary}"')
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 (slice by slice) or 3, got {dims}")
    return a


def _pool(maps: Sequence[np.ndarray] | Callable[[], object], pooling: str) -> np.ndarray:
    out: np.ndarray | None = None
    n = 0
    for m in maps:  # type: ignore[union-attr]
        n += 1
        if out is None:
            out = np.array(m, dtype=np.float64)
        elif pooling == "max":
            np.maximum(out, m, out=out)
        elif pooling == "min":
            np.minimum(out, m, out=out)
        elif pooling == "mean":
            out += m
        else:
            raise ValueError(f'pooling must be "max", "mean" or "min", got "{pooling}"')
    assert out is not None
    return out / n if pooling == "mean" else out


def right_angle_rotations(dims: int = 3) -> list[tuple[tuple[int, ...], tuple[bool, ...]]]:
    """The right-angle rotations of the voxel grid (IBSI 2 §2.4): 24 in 3D, 4 in the (y, x) plane.

    Each is (axis permutation, flips): a proper rotation is a signed permutation matrix of
    determinant +1.
    """
    rots = []
    axes = (0, 1, 2) if dims == 3 else (1, 2)
    for perm in itertools.permutations(axes):
        parity = _perm_parity(perm)
        for flips in itertools.product((False, True), repeat=len(axes)):
            if (parity * (-1) ** sum(flips)) == 1:
                full_perm = perm if dims == 3 else (0, *perm)
                full_flips = flips if dims == 3 else (False, *flips)
                rots.append((tuple(full_perm), tuple(full_flips)))
    return rots


def _perm_parity(perm: Sequence[int]) -> int:
    p = list(perm)
    parity = 1
    for i in range(len(p)):
        for j in range(i + 1, len(p)):
            if p[i] > p[j]:
                parity = -parity
    return parity


def _rotated(image: np.ndarray, rot: tuple[tuple[int, ...], tuple[bool, ...]],
             fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """fn applied in the rotated frame, the result brought back to the image frame."""
    perm, flips = rot
    a = np.transpose(image, perm)
    flip_axes = tuple(i for i, f in enumerate(flips) if f)
    if flip_axes:
        a = np.flip(a, flip_axes)
    r = fn(np.ascontiguousarray(a))
    if flip_axes:
        r = np.flip(r, flip_axes)
    return np.transpose(r, np.argsort(perm))


def _rotation_pooled(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], dims: int,
                     rotation_invariant: bool, pooling: str) -> np.ndarray:
    if not rotation_invariant:
        return fn(image)
    return _pool((_rotated(image, rot, fn) for rot in right_angle_rotations(dims)),
                 pooling)  # type: ignore[arg-type]


def _convolve_fft(image: np.ndarray, kernel: np.ndarray, boundary: str) -> np.ndarray:
    """Convolution with an odd-sized kernel (same shape as image), boundary by padding.

    The kernel has the image's number of axes; axes of size 1 are not padded (2D kernels).
    """
    pad = [(k // 2, k // 2) for k in kernel.shape]
    mode = _PAD_MODE[boundary]
    padded = np.pad(image, pad, mode=mode)  # type: ignore[call-overload]
    return fftconvolve(padded, kernel, mode="valid")


def _separable(image: np.ndarray, kernels: Sequence[np.ndarray | None], boundary: str
               ) -> np.ndarray:
    """Separable convolution: ``kernels[i]`` along array axis ``i`` (None = identity)."""
    out = image
    for axis, k in enumerate(kernels):
        if k is None:
            continue
        out = ndimage.convolve1d(out, np.asarray(k, dtype=np.float64), axis=axis,
                                 mode=_NDI_MODE[boundary], cval=0.0)
    return out


# ----------------------------------------------------------------------------------- mean
def mean_filter(image: np.ndarray, support: int = 15, boundary: Boundary = "zero",
                dims: int = 3) -> np.ndarray:
    """Mean filter (IBSI 2 §2.5, ``S60F``): average over a cube (square in 2D) of
    ``support`` voxels per side."""
    a = _check(image, boundary, dims)
    if support < 1 or support % 2 == 0:
        raise ValueError(f"mean filter support must be an odd number of voxels, got {support}")
    size = (support,) * 3 if dims == 3 else (1, support, support)
    return ndimage.uniform_filter(a, size=size, mode=_NDI_MODE[boundary], cval=0.0)


# ------------------------------------------------------------------------------------ LoG
def log_kernel(spacing_mm: Sequence[float], sigma_mm: float, truncate: float = 4.0,
               dims: int = 3) -> np.ndarray:
    """Laplacian-of-Gaussian kernel (IBSI 2 §2.6, ``L6PA``) sampled on the voxel grid.

    g(x) = -1/σ² (1/(σ√(2π)))^D (D - |x|²/σ²) exp(-|x|²/(2σ²)), with x and σ in voxels
    (σ = σ_mm / spacing, as the IBSI 2 reference maps are made; not rescaled to mm); support
    M = 1 + 2⌊dσ/s + 0.5⌋ voxels per axis with d = ``truncate``.
    """
    sp = np.asarray(spacing_mm, dtype=np.float64)[3 - dims:]
    sigma = sigma_mm / float(np.max(sp))  # σ in voxels (IBSI 2: isotropic grids)
    half = np.floor(truncate * sigma_mm / sp + 0.5).astype(int)
    grids = np.meshgrid(*[np.arange(-h, h + 1) * (s / np.max(sp))
                          for h, s in zip(half, sp, strict=True)], indexing="ij", sparse=True)
    r2 = sum(g ** 2 for g in grids)
    s2 = sigma ** 2
    k = (-1.0 / s2 * (1.0 / (sigma * np.sqrt(2 * np.pi))) ** dims
         * (dims - r2 / s2) * np.exp(-r2 / (2 * s2)))
    return k if dims == 3 else k[None]


def log_filter(image: np.ndarray, spacing_mm: Sequence[float], sigma_mm: float,
               truncate: float = 4.0, boundary: Boundary = "zero", dims: int = 3
               ) -> np.ndarray:
    """Laplacian-of-Gaussian response map (IBSI 2 §2.6, ``L6PA``)."""
    a = _check(image, boundary, dims)
    return _convolve_fft(a, log_kernel(spacing_mm, sigma_mm, truncate, dims), boundary)


# ----------------------------------------------------------------------------------- Laws
def laws_filter(image: np.ndarray, kernels: str = "E5L5S5", boundary: Boundary = "zero",
                dims: int = 3, rotation_invariant: bool = False, pooling: Pooling = "max",
                energy_delta: int | None = None) -> np.ndarray:
    """Laws kernel response (IBSI 2 §2.7, ``JTXT``); with ``energy_delta`` the energy map.

    ``kernels`` names the 1D kernels along x, y (and z), e.g. ``"E5L5S5"`` or ``"L5S5"``
    (2D); each is normalised to unit L2 norm. Rotation-invariant responses are pooled first;
    the energy map is then the mean of the absolute response over a (2δ+1) cube (square).
    """
    a = _check(image, boundary, dims)
    names = [kernels[i:i + 2].upper() for i in range(0, len(kernels), 2)]
    if len(names) != dims or any(n not in _LAWS for n in names):
        raise ValueError(f'Laws kernel "{kernels}" must name {dims} of {sorted(_LAWS)}')
    ks = [np.asarray(_LAWS[n]) / np.linalg.norm(_LAWS[n]) for n in names]
    per_axis: list[np.ndarray | None] = [None, None, None]
    for i, k in enumerate(ks):  # x -> axis 2, y -> axis 1, z -> axis 0
        per_axis[2 - i] = k

    def response(x: np.ndarray) -> np.ndarray:
        return _separable(x, per_axis, boundary)

    out = _rotation_pooled(a, response, dims, rotation_invariant, pooling)
    if energy_delta is not None:
        size = 2 * energy_delta + 1
        out = ndimage.uniform_filter(np.abs(out), size=(size,) * 3 if dims == 3
                                     else (1, size, size), mode=_NDI_MODE[boundary], cval=0.0)
    return out


# ---------------------------------------------------------------------------------- Gabor
def gabor_kernel(shape_yx: tuple[int, int], spacing_mm: float, sigma_mm: float,
                 lambda_mm: float, gamma: float, theta_rad: float) -> np.ndarray:
    """2D Gabor kernel (IBSI 2 §2.8, ``Q88H``), as large as the image plane (odd size).

    g(x, y) = exp(-(x̃² + γ² ỹ²)/(2σ²)) exp(i 2π x̃/λ), x̃ = x cos θ + y sin θ,
    ỹ = -x sin θ + y cos θ, x and y in voxels of the in-plane spacing.
    """
    ny, nx = (1 + 2 * (n // 2) for n in shape_yx)
    n = max(ny, nx)
    sigma = sigma_mm / spacing_mm
    lam = lambda_mm / spacing_mm
    c = np.arange(n) - (n - 1) / 2.0
    y, x = np.meshgrid(c, c, indexing="ij")
    xr = x * np.cos(theta_rad) + y * np.sin(theta_rad)
    yr = -x * np.sin(theta_rad) + y * np.cos(theta_rad)
    return np.exp(-(xr ** 2 + gamma ** 2 * yr ** 2) / (2 * sigma ** 2)) * np.exp(
        1j * 2 * np.pi * xr / lam)


def _gabor_planes(a: np.ndarray, spacing_mm: Sequence[float], sigma_mm: float,
                  lambda_mm: float, gamma: float, thetas: Sequence[float], boundary: str,
                  pooling: str) -> np.ndarray:
    """Gabor modulus in the (y, x) planes of ``a``, pooled over ``thetas`` (radians)."""
    sp = float(max(spacing_mm[1], spacing_mm[2]))
    pad = [(0, 0)] + [(n // 2, n // 2) for n in a.shape[1:]]
    # make the kernel's odd size cover the plane; pad so the 'valid' output keeps the shape
    padded = np.pad(a, pad, mode=_PAD_MODE[boundary])  # type: ignore[call-overload]

    ky, kx = (1 + 2 * (n // 2) for n in a.shape[1:])
    # linear convolution by FFT; the padded image is transformed once for all orientations
    fy, fx = (sp_fft.next_fast_len(p + k - 1) for p, k in zip(padded.shape[1:], (ky, kx),
                                                                strict=True))
    img_f = sp_fft.fft2(padded, s=(fy, fx), axes=(1, 2))

    def one(theta: float) -> np.ndarray:
        k = gabor_kernel((a.shape[1], a.shape[2]), sp, sigma_mm, lambda_mm, gamma, theta)
        cy, cx = (k.shape[0] - ky) // 2, (k.shape[1] - kx) // 2
        k_f = sp_fft.fft2(k[cy:cy + ky, cx:cx + kx], s=(fy, fx))
        r = sp_fft.ifft2(img_f * k_f[None], axes=(1, 2))
        return np.abs(r[:, ky - 1:ky - 1 + a.shape[1], kx - 1:kx - 1 + a.shape[2]])

    return _pool((one(t) for t in thetas), pooling)  # type: ignore[arg-type]


def gabor_filter(image: np.ndarray, spacing_mm: Sequence[float], sigma_mm: float,
                 lambda_mm: float, gamma: float, theta_deg: float = 0.0,
                 theta_step_deg: float | None = None, orthogonal_planes: bool = False,
                 boundary: Boundary = "zero", pooling: Pooling = "mean") -> np.ndarray:
    """Gabor response modulus (IBSI 2 §2.8, ``Q88H``), a 2D filter.

    ``theta_step_deg`` set: orientations θ = 0, Δθ, … < 360° pooled (orientation
    invariance). ``orthogonal_planes``: the same in the axial, coronal and sagittal planes,
    pooled (IBSI 2's 3D rotation invariance for Gabor); else the axial (y, x) planes only.
    """
    a = _check(image, boundary, 3)
    if theta_step_deg is None:
        thetas = [np.deg2rad(theta_deg)]
    else:
        # the modulus at θ + 180° equals that at θ (conjugate kernel on a real image), so
        # when the step divides 180° the half circle gives the same mean / max
        half = 180.0 % theta_step_deg == 0
        thetas = list(np.deg2rad(np.arange(0.0, 180.0 if half else 360.0, theta_step_deg)))
    sp = tuple(float(s) for s in spacing_mm)
    if not orthogonal_planes:
        return _gabor_planes(a, sp, sigma_mm, lambda_mm, gamma, thetas, boundary, pooling)
    maps = []
    for perm in ((0, 1, 2), (1, 0, 2), (2, 0, 1)):  # stack axis z, y, x
        t = np.ascontiguousarray(np.transpose(a, perm))
        r = _gabor_planes(t, tuple(sp[p] for p in perm), sigma_mm, lambda_mm, gamma, thetas,
                          boundary, pooling)
        maps.append(np.transpose(r, np.argsort(perm)))
    return _pool(maps, pooling)


# ------------------------------------------------------------------- separable wavelets
def _wavelet_filters(wavelet: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import pywt
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ImportError("separable wavelets need PyWavelets (pip install PyWavelets)") from exc
    w = pywt.Wavelet(wavelet)
    return np.asarray(w.dec_lo, dtype=np.float64), np.asarray(w.dec_hi, dtype=np.float64)


def _dilate(k: np.ndarray, factor: int) -> np.ndarray:
    """The filter with 2^j - 1 zeros between taps (à trous), keeping its centre.

    SciPy centres a filter of L taps on tap L//2; the dilated filter keeps that tap as its
    centre (tap (L//2)·factor), zero-padded on the short side so SciPy centres it there too.
    """
    if factor == 1:
        return k
    out = np.zeros((len(k) - 1) * factor + 1)
    out[::factor] = k
    left = (len(k) // 2) * factor
    right = len(out) - 1 - left
    if left < right:
        out = np.concatenate([np.zeros(right - left), out])
    elif right < left:
        out = np.concatenate([out, np.zeros(left - right)])
    return out


def separable_wavelet(image: np.ndarray, wavelet: str = "haar", bands: str = "LLL",
                      level: int = 1, boundary: Boundary = "mirror",
                      rotation_invariant: bool = False, pooling: Pooling = "mean"
                      ) -> np.ndarray:
    """Undecimated separable wavelet response (IBSI 2 §2.9, ``25BO``).

    ``bands`` names the low (L) or high (H) pass filter along x, y (and z), e.g. ``"LHL"``;
    two letters filter slice by slice. ``level`` > 1 uses the à trous algorithm: the image is
    low-passed along every axis at levels 1..level-1, and the band filters are dilated by
    2^(level-1). Filter coefficients are PyWavelets' decomposition filters (``"haar"``,
    ``"db2"``, ``"coif1"``, …).
    """
    dims = len(bands)
    a = _check(image, boundary, dims)
    lo, hi = _wavelet_filters(wavelet)
    if any(b not in "LH" for b in bands.upper()):
        raise ValueError(f'wavelet bands must be letters L or H, got "{bands}"')

    def per_axis(codes: str, factor: int) -> list[np.ndarray | None]:
        ks: list[np.ndarray | None] = [None, None, None]
        for i, c in enumerate(codes):  # x -> axis 2, y -> axis 1, z -> axis 0
            ks[2 - i] = _dilate(lo if c == "L" else hi, factor)
        return ks

    def response(x: np.ndarray) -> np.ndarray:
        for j in range(1, level):
            x = _separable(x, per_axis("L" * dims, 2 ** (j - 1)), boundary)
        return _separable(x, per_axis(bands.upper(), 2 ** (level - 1)), boundary)

    return _rotation_pooled(a, response, dims, rotation_invariant, pooling)


# ------------------------------------------------------------------------- Simoncelli
def _frequency_norm(shape: Sequence[int]) -> np.ndarray:
    """|ν| on the centred grid of the IBSI 2 reference maps, in FFT (quadrant) order.

    Per axis ν_i = π (i - c)/c with c = (N - 1)/2, i = 0..N-1, so that the grid spans
    [-π, π] symmetrically (for even N it holds no zero frequency); ``ifftshift`` then puts
    it in the order of ``numpy.fft.fftn``. This is the sampling the IBSI 2 consensus maps
    (tests 8.a.x) were made with; the FFT's own grid (``fftfreq``) misses them at levels 2, 3.
    """
    axes = []
    for n in shape:
        c = (n - 1) / 2.0
        axes.append(np.fft.ifftshift(np.pi * (np.arange(n) - c) / c if c > 0 else np.zeros(1)))
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    return np.sqrt(sum(g ** 2 for g in grids))


def simoncelli_transfer(shape: Sequence[int], level: int = 1) -> np.ndarray:
    """Simoncelli isotropic band-pass transfer function (IBSI 2 §2.10, ``PRT7``).

    ψ(ν) = cos(π/2 · log2(2|ν|/π)) for π/4 < |ν| ≤ π, 0 elsewhere; level j uses
    ψ(2^(j-1) ν).
    """
    nu = _frequency_norm(shape) * 2 ** (level - 1)
    out = np.zeros(nu.shape)
    band = (nu >= np.pi / 4) & (nu <= np.pi)
    out[band] = np.cos(np.pi / 2 * np.log2(2 * nu[band] / np.pi))
    return out


def simoncelli_wavelet(image: np.ndarray, level: int = 1, boundary: Boundary = "periodic",
                       dims: int = 3) -> np.ndarray:
    """Simoncelli non-separable wavelet response (IBSI 2 §2.10, ``PRT7``), by FFT.

    ``"periodic"`` filters the grid as it is (the FFT's own boundary); any other boundary
    pads every filtered axis by half its length with that rule first, filters the padded
    grid and crops back. ``dims=2``: the 2D transfer function in each (y, x) slice.
    """
    a = _check(image, boundary, dims)
    axes = (0, 1, 2) if dims == 3 else (1, 2)
    if boundary != "periodic":
        pad = [(n // 2, n // 2) if ax in axes else (0, 0) for ax, n in enumerate(a.shape)]
        padded = np.pad(a, pad, mode=_PAD_MODE[boundary])  # type: ignore[call-overload]
        r = simoncelli_wavelet(padded, level, "periodic", dims)
        return r[tuple(slice(p, p + n) for (p, _), n in zip(pad, a.shape, strict=True))]
    transfer = simoncelli_transfer([a.shape[ax] for ax in axes], level)
    if dims == 2:
        transfer = transfer[None]
    return np.real(sp_fft.ifftn(sp_fft.fftn(a, axes=axes) * transfer, axes=axes))


# ---------------------------------------------------------------------------------- Riesz
def riesz_transform(image: np.ndarray, order: Sequence[int], boundary: Boundary = "periodic"
                    ) -> np.ndarray:
    """Riesz transform of order (l1, l2, l3) along (x, y, z) (IBSI 2 §2.11, ``AYRS``).

    Transfer function (-j)^L √(L!/(l1! l2! l3!)) ν1^l1 ν2^l2 ν3^l3 / |ν|^L, L = l1 + l2 + l3,
    0 at ν = 0, on the same centred frequency grid as :func:`simoncelli_transfer`. Applied to
    a LoG or Simoncelli response it gives the IBSI 2 "Riesz-transformed" filters (tests 9, 10).
    ``"periodic"`` transforms the grid as it is; any other boundary pads by half the length.
    """
    from math import factorial

    a = _check(image, boundary, 3)
    if len(order) != 3 or any(o < 0 for o in order) or sum(order) == 0:
        raise ValueError(f"Riesz order must be 3 non-negative integers (x, y, z) with a "
                         f"positive sum, got {tuple(order)}")
    if boundary != "periodic":
        pad = [(n // 2, n // 2) for n in a.shape]
        padded = np.pad(a, pad, mode=_PAD_MODE[boundary])  # type: ignore[call-overload]
        r = riesz_transform(padded, order, "periodic")
        return r[tuple(slice(p, p + n) for (p, _), n in zip(pad, a.shape, strict=True))]
    order_zyx = tuple(int(o) for o in order)[::-1]
    axes = []
    for n in a.shape:
        c = (n - 1) / 2.0
        axes.append(np.fft.ifftshift(np.pi * (np.arange(n) - c) / c if c > 0 else np.zeros(1)))
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    norm = np.sqrt(sum(g ** 2 for g in grids))
    big_l = sum(order_zyx)
    num = np.ones(norm.shape)
    for g, o in zip(grids, order_zyx, strict=True):
        num = num * g ** o
    coef = np.sqrt(factorial(big_l) / np.prod([factorial(o) for o in order_zyx]))
    with np.errstate(invalid="ignore", divide="ignore"):
        transfer = np.where(norm > 0, coef * num / norm ** big_l, 0.0) * (-1j) ** big_l
    return np.real(np.fft.ifftn(np.fft.fftn(a) * transfer))


# ------------------------------------------------------------------------- by identifier
ResponseFilter = Callable[[np.ndarray, Sequence[float]], np.ndarray]

#: the IBSI 2 phase-2 filters (manual chapter 6): A = 2D, B = 3D; mirror boundary,
#: Simoncelli periodic
PHASE2_FILTERS: dict[str, str] = {
    "2.A": "mean:support=5,dims=2", "2.B": "mean:support=5",
    "3.A": "log:sigma_mm=1.5,dims=2", "3.B": "log:sigma_mm=1.5",
    "4.A": "laws:kernels=L5E5,dims=2,rotation_invariant=1,pooling=max,energy_delta=7",
    "4.B": "laws:kernels=L5E5E5,rotation_invariant=1,pooling=max,energy_delta=7",
    "5.A": "gabor:sigma_mm=5,lambda_mm=2,gamma=1.5,theta_step_deg=22.5",
    "5.B": "gabor:sigma_mm=5,lambda_mm=2,gamma=1.5,theta_step_deg=22.5,orthogonal_planes=1",
    "6.A": "wavelet:wavelet=db3,bands=LH,level=1,rotation_invariant=1",
    "6.B": "wavelet:wavelet=db3,bands=LLH,level=1,rotation_invariant=1",
    "7.A": "wavelet:wavelet=db3,bands=HH,level=2,rotation_invariant=1",
    "7.B": "wavelet:wavelet=db3,bands=HHH,level=2,rotation_invariant=1",
    "8.A": "simoncelli:level=1,dims=2,boundary=periodic", "8.B": "simoncelli:level=1",
    "9.A": "simoncelli:level=2,dims=2,boundary=periodic", "9.B": "simoncelli:level=2",
}

_KINDS: dict[str, tuple[Callable[..., np.ndarray], bool, dict[str, object]]] = {
    # name: (function, takes spacing, defaults)
    "mean": (mean_filter, False, {"support": 5, "boundary": "mirror", "dims": 3}),
    "log": (log_filter, True, {"truncate": 4.0, "boundary": "mirror", "dims": 3}),
    "laws": (laws_filter, False, {"boundary": "mirror", "dims": 3}),
    "gabor": (gabor_filter, True, {"boundary": "mirror", "pooling": "mean"}),
    "wavelet": (separable_wavelet, False, {"boundary": "mirror", "pooling": "mean"}),
    "simoncelli": (simoncelli_wavelet, False, {"boundary": "periodic"}),
}
_INT = {"support", "dims", "energy_delta", "level"}
_BOOL = {"rotation_invariant", "orthogonal_planes"}
_STR = {"boundary", "pooling", "kernels", "wavelet", "bands"}


def response_filter(spec: str) -> ResponseFilter:
    """A filter ``f(image, spacing_mm) -> response`` from an IBSI 2 phase-2 id (``"3.B"``)
    or a spec ``"KIND:key=value,…"`` (kinds: mean, log, laws, gabor, wavelet, simoncelli;
    keys: the keyword arguments of the matching function, e.g.
    ``"log:sigma_mm=1.5,boundary=mirror"``). Unset keys take the IBSI 2 phase-2 defaults
    (mirror boundary; Simoncelli periodic).

    >>> f = response_filter("2.B")
    >>> f(np.ones((5, 5, 5)), (1.0, 1.0, 1.0)).mean()
    np.float64(1.0)
    """
    text = PHASE2_FILTERS.get(spec.strip().upper(), spec.strip())
    kind, _, args = text.partition(":")
    if kind not in _KINDS:
        raise ValueError(f'unknown filter "{spec}": give an IBSI 2 phase-2 id '
                         f"({', '.join(PHASE2_FILTERS)}) or KIND:key=value,… with KIND one "
                         f"of {', '.join(_KINDS)}")
    fn, takes_spacing, defaults = _KINDS[kind]
    kwargs: dict[str, object] = dict(defaults)
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f'filter "{spec}": "{item}" is not key=value')
        key = key.strip()
        value = value.strip()
        if key in _INT:
            kwargs[key] = int(value)
        elif key in _BOOL:
            kwargs[key] = value.lower() in ("1", "true", "yes")
        elif key in _STR:
            kwargs[key] = value
        else:
            kwargs[key] = float(value)
    if "dims" in kwargs and fn in (separable_wavelet, gabor_filter):
        kwargs.pop("dims")

    def apply(image: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
        if takes_spacing:
            return fn(image, tuple(float(s) for s in spacing_mm), **kwargs)
        return fn(image, **kwargs)

    try:  # fail now, on a small probe image, rather than deep in a batch
        apply(np.zeros((5, 5, 5)), (1.0, 1.0, 1.0))
    except TypeError as exc:
        raise ValueError(f'filter "{spec}": {exc}') from None
    return apply
