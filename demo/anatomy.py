"""Vectorised drawing of chest-radiograph-like images with nodule-like lesions.

Everything is drawn on a float32 "brightness" image (0 = black, 1 = white, as a
MONOCHROME2 display would show it) from analytic shapes on a rotated, shifted body
coordinate frame. No per-pixel Python loops: a 512x512 case takes a few tens of ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MIN_SIDE = 320
MAX_SIDE = 512
SUBTLE_FRACTION = 0.15


@dataclass(frozen=True)
class Lesion:
    """One nodule-like opacity, in image pixel coordinates."""

    row: float
    col: float
    radius: float  # nominal radius in pixels (the mask is the region inside it)
    contrast: float  # peak brightness added on the 0..1 scale
    kind: str  # "gaussian" or "disc"


@dataclass(frozen=True)
class ChestImage:
    """A drawn case: brightness in [0, 1], lung-field and lesion masks, lesions."""

    brightness: np.ndarray  # float32 (rows, cols), MONOCHROME2 sense
    lung_mask: np.ndarray  # bool (rows, cols)
    lesion_mask: np.ndarray  # bool (rows, cols); all False without lesions
    lesions: tuple[Lesion, ...]


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _soft_inside(f: np.ndarray, softness: float) -> np.ndarray:
    """1 inside the implicit shape f < 1, 0 outside, with a smooth rim."""
    return _smoothstep(1.0 + softness, 1.0 - softness, f)


def _low_frequency_field(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth random field in [-1, 1]: a few long-wavelength plane waves."""
    field = np.zeros_like(x)
    for _ in range(3):
        angle = rng.uniform(0, 2 * np.pi)
        freq = rng.uniform(0.8, 2.2)
        phase = rng.uniform(0, 2 * np.pi)
        field += np.cos(freq * (x * np.cos(angle) + y * np.sin(angle)) * np.pi + phase)
    return field / 3.0


def draw_image_size(rng: np.random.Generator) -> tuple[int, int]:
    """Rows and columns between MIN_SIDE and MAX_SIDE, usually a little taller than wide."""
    cols = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    rows = int(np.clip(round(cols * rng.uniform(0.92, 1.25)), MIN_SIDE, MAX_SIDE))
    return rows, cols


@dataclass(frozen=True)
class _Frame:
    """Pixel grids and the body frame: x in [-1, 1] across the torso, y from -1 (shoulders)
    to ~1 (abdomen), |x| as ax."""

    yy: np.ndarray
    xx: np.ndarray
    x: np.ndarray
    y: np.ndarray
    ax: np.ndarray
    half_h: float


def _body_frame(rng: np.random.Generator, rows: int, cols: int) -> _Frame:
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cx = cols * (0.5 + rng.uniform(-0.035, 0.035))
    cy = rows * (0.5 + rng.uniform(-0.03, 0.04))
    half_w = cols * rng.uniform(0.40, 0.47)
    half_h = rows * rng.uniform(0.47, 0.53)
    theta = np.deg2rad(rng.uniform(-4.0, 4.0))
    cos_t, sin_t = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    dx, dy = xx - cx, yy - cy
    x = (dx * cos_t + dy * sin_t) / half_w
    y = (-dx * sin_t + dy * cos_t) / half_h
    return _Frame(yy=yy, xx=xx, x=x, y=y, ax=np.abs(x), half_h=half_h)


def _lungs(rng: np.random.Generator, f: _Frame) -> tuple[np.ndarray, float, float, float]:
    """Tapered superellipses, apex narrower than base; (lungs, lung_x, lung_y, lung_top)."""
    lung_w = rng.uniform(0.30, 0.36)
    lung_top = rng.uniform(0.66, 0.76)
    lung_bottom = rng.uniform(0.56, 0.66)
    lung_x = rng.uniform(0.43, 0.49)
    lung_y = rng.uniform(-0.04, 0.06)
    lungs = np.zeros_like(f.x)
    for side in (-1.0, 1.0):
        lx = side * (lung_x + rng.uniform(-0.02, 0.02))
        ly = lung_y + rng.uniform(-0.02, 0.02)
        rel_y = f.y - ly
        ay = np.where(rel_y < 0, lung_top, lung_bottom)
        taper = 1.0 - 0.38 * np.clip(-rel_y / lung_top, 0.0, 1.0) ** 2
        qx = ((f.x - lx) / (lung_w * taper)) ** 2
        shape = qx * (0.8 + 0.2 * qx) + (rel_y / ay) ** 2
        lungs = np.maximum(lungs, _soft_inside(shape, 0.12))
    return lungs, lung_x, lung_y, lung_top


def _heart(rng: np.random.Generator, f: _Frame, lung_y: float) -> np.ndarray:
    """On the patient's left (image right), overlapping the left lung."""
    heart_x = rng.uniform(0.06, 0.16)
    heart_y = lung_y + rng.uniform(0.30, 0.40)
    heart_f = ((f.x - heart_x) / rng.uniform(0.30, 0.38)) ** 2 + (
        (f.y - heart_y) / rng.uniform(0.24, 0.30)
    ) ** 2
    return _soft_inside(heart_f, 0.15)


def _midline(rng: np.random.Generator, f: _Frame, lung_y: float, rows: int, body: np.ndarray):
    """Mediastinum, aortic knob and spine."""
    q = (f.x / 0.2) ** 2
    mediastinum = np.exp(-q * q) * _smoothstep(-1.1, -0.8, f.y)
    aortic_knob = np.exp(-(((f.x - 0.12) / 0.08) ** 2 + ((f.y - lung_y + 0.3) / 0.07) ** 2))
    vertebra_phase = np.cos(2.0 * np.pi * (f.y * f.half_h) / (rows * rng.uniform(0.045, 0.06)))
    q = (f.x / 0.085) ** 2
    spine = np.exp(-q * q * q) * (0.8 + 0.2 * vertebra_phase) * body
    return mediastinum, aortic_knob, spine


def _ribs(rng: np.random.Generator, f: _Frame, body: np.ndarray) -> np.ndarray:
    """Posterior ribs: arcs descending laterally, a periodic band pattern in a warped frame."""
    rib_spacing = rng.uniform(0.15, 0.19)
    rib_curve = rng.uniform(0.5, 0.8)
    t = f.y + 0.9 - rib_curve * (f.ax - 0.12) ** 2 + 0.15 * np.clip(f.ax - 0.12, 0, None)
    t = t + 0.08 * t * t
    rib_phase = np.cos(2.0 * np.pi * t / rib_spacing + rng.uniform(0, 2 * np.pi))
    ribs = np.clip(rib_phase, 0.0, None)
    ribs = ribs * ribs * np.sqrt(ribs)
    ribs *= (
        _smoothstep(0.97, 0.85, f.ax) * _smoothstep(0.06, 0.16, f.ax) * _smoothstep(0.85, 0.6, f.y)
    )
    return ribs * body


def _clavicles(rng: np.random.Generator, f: _Frame, lung_y: float, lung_top: float):
    """Slightly tilted bands across the apices."""
    clav = np.zeros_like(f.x)
    clav_y = lung_y - lung_top + rng.uniform(0.02, 0.1)
    for side in (-1.0, 1.0):
        line_y = clav_y - 0.12 * (f.ax - 0.1) * side * side
        band = np.exp(-(((f.y - line_y) / 0.035) ** 2))
        clav += band * _smoothstep(0.05, 0.12, side * f.x) * _smoothstep(0.8, 0.6, side * f.x)
    return clav


def _lung_markings(rng: np.random.Generator, f: _Frame, lung_x: float, lung_y: float):
    """Blurred noise and hilar brightness (both applied inside the lung fields)."""
    rows, cols = f.x.shape
    markings = ndimage.gaussian_filter(
        rng.standard_normal((rows, cols)).astype(np.float32), sigma=rng.uniform(1.8, 3.0)
    )
    markings /= markings.std() + 1e-6
    hilum_dist = np.minimum(
        np.hypot(f.x + lung_x * 0.55, f.y - lung_y), np.hypot(f.x - lung_x * 0.55, f.y - lung_y)
    )
    return markings, np.exp(-hilum_dist / 0.22)


def _anatomy_brightness(rng: np.random.Generator, f: _Frame, rows: int):
    """The chest without lesions; (brightness, lung field)."""
    # Torso with sloping shoulders and a neck.
    torso_half_width = 0.33 + 0.67 * _smoothstep(-1.05, -0.55, f.y)
    body = _smoothstep(0.03, -0.03, f.ax - torso_half_width) * _smoothstep(-1.3, -1.1, f.y)
    lungs, lung_x, lung_y, lung_top = _lungs(rng, f)
    heart = _heart(rng, f, lung_y)
    lung_field = lungs * (1.0 - heart)
    mediastinum, aortic_knob, spine = _midline(rng, f, lung_y, rows, body)
    ribs = _ribs(rng, f, body)
    clav = _clavicles(rng, f, lung_y, lung_top)
    markings, hilum = _lung_markings(rng, f, lung_x, lung_y)
    lung_depth = rng.uniform(0.24, 0.34)
    lateral_shade = 0.78 + 0.22 * _smoothstep(0.2, 0.9, f.ax)
    brightness = (
        0.07
        + 0.42 * body
        + 0.14 * mediastinum * body
        + 0.07 * heart
        + 0.06 * aortic_knob * body
        + 0.12 * spine
        + rng.uniform(0.05, 0.10) * ribs * (0.5 + 0.5 * lungs)
        + 0.08 * clav * body
        - lung_depth * lung_field * lateral_shade
        + lung_field * (0.08 * hilum + rng.uniform(0.010, 0.018) * markings)
        + 0.035 * _low_frequency_field(rng, f.x, f.y)
        + rng.uniform(-0.06, 0.06) * (f.x * 0.5)
        + rng.uniform(-0.05, 0.05) * (f.y * 0.5)
    )
    return brightness, lung_field


def draw_chest(rng: np.random.Generator, rows: int, cols: int, lesion_count: int) -> ChestImage:
    """Draw one chest-radiograph-like image with `lesion_count` lesions inside the lungs.

    Every random number is drawn in a fixed order (the frame, the anatomy, the lesions, the
    noise), so a seed gives the same image."""
    frame = _body_frame(rng, rows, cols)
    brightness, lung_field = _anatomy_brightness(rng, frame, rows)
    lung_mask = lung_field > 0.5
    lesions = _place_lesions(rng, lung_mask, lesion_count)
    lesion_mask = np.zeros((rows, cols), dtype=bool)
    for lesion in lesions:
        opacity, inside = _lesion_profile(rng, frame.yy, frame.xx, lesion)
        brightness = brightness + lesion.contrast * opacity
        lesion_mask |= inside
    lesion_mask &= lung_mask

    brightness = brightness + rng.uniform(0.008, 0.016) * rng.standard_normal((rows, cols)).astype(
        np.float32
    )
    gamma = rng.uniform(0.85, 1.15)
    brightness = np.clip(brightness, 0.0, 1.0) ** gamma
    return ChestImage(
        brightness=brightness.astype(np.float32),
        lung_mask=lung_mask,
        lesion_mask=lesion_mask,
        lesions=tuple(lesions),
    )


def _place_lesions(rng: np.random.Generator, lung_mask: np.ndarray, count: int) -> list[Lesion]:
    """Pick centres well inside the lung fields, apart from each other."""
    if count == 0:
        return []
    depth = ndimage.distance_transform_edt(lung_mask)
    side = min(lung_mask.shape)
    lesions: list[Lesion] = []
    for _ in range(count):
        radius = float(rng.uniform(6.0, 25.0)) * side / 416.0
        radius = float(np.clip(radius, 6.0, 25.0))
        # Most nodules are moderate, some are subtle; smaller ones get more contrast so
        # that they survive downsampling to the model's 128x128 input.
        if rng.random() < SUBTLE_FRACTION:
            base = rng.uniform(0.04, 0.08)
        else:
            base = rng.uniform(0.11, 0.25)
        contrast = float(base * (1.0 + 0.9 * np.clip((14.0 - radius) / 8.0, 0.0, 1.0)))
        candidates = depth >= radius * 1.25 + 3.0
        for other in lesions:
            rr, cc = np.ogrid[0 : lung_mask.shape[0], 0 : lung_mask.shape[1]]
            far = np.hypot(rr - other.row, cc - other.col) >= radius + other.radius + 6.0
            candidates &= far
        idx = np.flatnonzero(candidates)
        if idx.size == 0:  # tiny lungs: fall back to the deepest lung point
            idx = np.array([int(np.argmax(depth))])
            radius = float(max(3.0, min(radius, depth.flat[idx[0]] / 1.3)))
        flat = int(idx[rng.integers(idx.size)])
        row, col = divmod(flat, lung_mask.shape[1])
        kind = "gaussian" if rng.random() < 0.6 else "disc"
        lesions.append(Lesion(float(row), float(col), radius, contrast, kind))
    return lesions


def _lesion_profile(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, lesion: Lesion
) -> tuple[np.ndarray, np.ndarray]:
    """Opacity (0..1) and region (distance <= radius) of a slightly elliptical lesion."""
    aspect = rng.uniform(0.85, 1.15)
    angle = rng.uniform(0, np.pi)
    ca, sa = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    dy, dx = yy - np.float32(lesion.row), xx - np.float32(lesion.col)
    u = (dx * ca + dy * sa) * aspect
    v = (-dx * sa + dy * ca) / aspect
    dist = np.sqrt(u * u + v * v)
    if lesion.kind == "gaussian":
        sigma = lesion.radius / 2.0
        opacity = np.exp(-0.5 * (dist / sigma) ** 2)
    else:
        rim = 0.18 * lesion.radius + 0.5
        opacity = 1.0 / (1.0 + np.exp(np.clip((dist - lesion.radius) / rim, -30, 30)))
    return opacity.astype(np.float32), dist <= lesion.radius
