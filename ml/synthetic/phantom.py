"""Phantom chest X-rays: a seeded, vectorised model of a PA chest radiograph.

The phantom is built as an attenuation map (arbitrary units: 0 is air, about 1 is the soft tissue
of the trunk) from analytic shapes with soft edges, then mapped to 12-bit detector values the way a
"for presentation" DX image looks: dense structures bright (MONOCHROME2). Geometry is expressed in
fractions of the image size, so a 250 x 300 test phantom is a scaled copy of the 2500 x 3000 one,
and the pixel spacing scales with it (the field of view stays about 35 x 42 cm).

The patient's right is on the image's left (PA view). Masks use the patient's sides: ``right_lung``
is the lung on the left of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "LABELS",
    "LOBES",
    "Phantom",
    "cardiothoracic_ratio",
    "make_phantom",
]

LABELS: tuple[str, ...] = ("Normal", "CHF", "Pneumonia")
LOBES: tuple[str, ...] = ("right upper", "right middle", "right lower", "left upper", "left lower")

MAX_VALUE = 4095  # 12 bits stored
_FIELD_HEIGHT_MM = 417.0  # a 3000-row image at 0.139 mm, MIMIC-CXR's most common spacing


@dataclass(frozen=True)
class Phantom:
    """A synthetic chest radiograph with its anatomy.

    Attributes:
        image: (H, W) uint16, values 0..4095 (12 bits), MONOCHROME2 (dense = bright).
        label: one of ``LABELS``.
        masks: boolean (H, W) masks: ``body``, ``thorax`` (inner thoracic cavity above the
            diaphragm), ``right_lung``, ``left_lung``, ``lungs``, ``heart``, ``mediastinum``,
            ``finding`` (empty for Normal; for CHF the enlarged heart, the perihilar haze and the
            pleural fluid; for Pneumonia the consolidation).
        ctr: cardiothoracic ratio measured on the heart and thorax masks.
        seed: the seed it was made from.
        pixel_spacing_mm: (row, column) spacing in mm.
        window_center: a display window centre for the stored values.
        window_width: a display window width.
        finding_lobe: the lobe of a pneumonia, else None.
        view_position: "PA".
        anatomy: landmarks in pixels (midline x, lung apex y, costophrenic angle y) and the
            target CTR the heart was drawn for.
    """

    image: np.ndarray
    label: str
    masks: dict[str, np.ndarray]
    ctr: float
    seed: int
    pixel_spacing_mm: tuple[float, float]
    window_center: float
    window_width: float
    finding_lobe: str | None = None
    view_position: str = "PA"
    anatomy: dict[str, float] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def finding_bbox(self) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) of the finding mask, inclusive-exclusive; None when there is none."""
        return _bbox(self.masks["finding"])


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def cardiothoracic_ratio(heart: np.ndarray, thorax: np.ndarray) -> float:
    """Maximal transverse cardiac diameter over maximal inner thoracic diameter.

    Both diameters are horizontal extents (the heart's rightmost and leftmost points need not lie
    on one row, as in the radiological definition).

    Args:
        heart: boolean (H, W) heart mask.
        thorax: boolean (H, W) inner thoracic mask.

    Returns:
        The ratio; 0.0 when either mask is empty.
    """
    hb, tb = _bbox(heart), _bbox(thorax)
    if hb is None or tb is None:
        return 0.0
    return (hb[2] - hb[0]) / (tb[2] - tb[0])


def _ramp(d: np.ndarray) -> np.ndarray:
    """Soft edge: 0 outside, 1 inside, linear across one edge width (d in edge widths)."""
    return np.clip(d + 0.5, 0.0, 1.0, out=d)


def _upsample(small: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling to an exact shape by two interpolation matrices (cheap with BLAS)."""

    def matrix(n_out: int, n_in: int) -> np.ndarray:
        pos = (np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = pos - lo
        m = np.zeros((n_out, n_in), dtype=np.float32)
        m[np.arange(n_out), lo] += (1 - frac).astype(np.float32)
        m[np.arange(n_out), hi] += frac.astype(np.float32)
        return m

    return (
        matrix(height, small.shape[0]) @ small.astype(np.float32) @ matrix(width, small.shape[1]).T
    )


def _smooth_noise(
    rng: np.random.Generator, height: int, width: int, cell: float, sigma: float = 1.2
) -> np.ndarray:
    """Zero-mean, unit-variance low-frequency noise with features about ``cell`` pixels wide."""
    from scipy.ndimage import gaussian_filter

    h = max(4, int(round(height / cell)))
    w = max(4, int(round(width / cell)))
    small = gaussian_filter(rng.standard_normal((h, w)), sigma, mode="wrap")
    small = (small - small.mean()) / (small.std() + 1e-12)
    return _upsample(small, height, width)


def _band(
    out: np.ndarray,
    x_center: np.ndarray,
    y_curve: np.ndarray,
    half_thickness: float,
    amplitude: float,
    cortex: float = 0.0,
) -> None:
    """Add a curved band y = y_curve(x) (defined on columns x_center) to ``out`` in place.

    Works inside the band's bounding box only, which keeps 20 ribs cheap at full size.
    """
    h, w = out.shape
    cols = x_center.astype(int)
    keep = (cols >= 0) & (cols < w)
    if not keep.any():
        return
    cols, yc = cols[keep], y_curve[keep]
    y0 = max(0, int(np.floor(yc.min() - 2 * half_thickness)))
    y1 = min(h, int(np.ceil(yc.max() + 2 * half_thickness)) + 1)
    if y1 <= y0:
        return
    rows = np.arange(y0, y1, dtype=np.float32)[:, None]
    u = np.abs(rows - yc[None, :].astype(np.float32)) / half_thickness
    # Flat-topped profile; a bright rim imitates the cortical bone seen edge-on.
    profile = np.clip(1.5 - u, 0.0, 1.0)
    if cortex:
        profile += cortex * np.exp(-(((u - 0.85) / 0.15) ** 2))
    out[y0:y1, cols] += amplitude * profile


def make_phantom(
    label: str,
    *,
    seed: int,
    height: int = 3000,
    width: int = 2500,
    ctr: float | None = None,
    lobe: str | None = None,
    noise: float = 1.0,
) -> Phantom:
    """Make a phantom chest radiograph.

    Args:
        label: "Normal", "CHF" or "Pneumonia".
        seed: the same seed (and arguments) gives the same image, bit for bit. One seed gives
            the same patient (anatomy) whatever the label.
        height: rows (default 3000, a realistic detector).
        width: columns (default 2500).
        ctr: target cardiothoracic ratio; default drawn from 0.38-0.47 (Normal, Pneumonia) or
            0.55-0.65 (CHF).
        lobe: for Pneumonia, one of ``LOBES``; default drawn from the seed.
        noise: scale of the quantum noise (0 for a noiseless image).

    Returns:
        The Phantom.
    """
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")
    if lobe is not None and lobe not in LOBES:
        raise ValueError(f"lobe must be one of {LOBES}, got {lobe!r}")
    if height < 64 or width < 64:
        raise ValueError(f"a phantom needs at least 64 x 64 pixels, got {width} x {height}")
    H, W = int(height), int(width)
    anatomy_rng = np.random.default_rng([seed, 0])
    disease_rng = np.random.default_rng([seed, 1 + LABELS.index(label)])
    noise_rng = np.random.default_rng([seed, 9, LABELS.index(label)])

    def jit(sd: float) -> float:
        return float(anatomy_rng.normal(0.0, sd))

    # Anatomy in fractions of W (horizontal) and H (vertical).
    xc = (0.5 + jit(0.01)) * W
    apex_y = (0.13 + jit(0.008)) * H
    cp_y = (0.70 + jit(0.015)) * H
    dome_r = cp_y - (0.085 + jit(0.008)) * H
    dome_l = dome_r + (0.02 + jit(0.005)) * H
    l_base = (0.345 + jit(0.008)) * W
    l_apex = 0.20 * W
    m_med = (0.055 + jit(0.004)) * W
    edge = max(1.0, 0.004 * W)
    if ctr is None:
        ctr = float(
            disease_rng.uniform(0.55, 0.65) if label == "CHF" else anatomy_rng.uniform(0.38, 0.47)
        )

    ys = np.arange(H, dtype=np.float32)
    xs = np.arange(W, dtype=np.float32)
    ax = np.abs(xs - xc)  # distance from the midline, per column
    right_side = xs < xc  # patient's right = image left

    # Lateral and medial walls of each lung, per row.
    t = np.clip((ys - apex_y) / (cp_y - apex_y), 0.0, 1.0)
    lat = l_apex + (l_base - l_apex) * np.sqrt(t)
    # The apex is an elliptical cap: the medial wall meets the lateral one at the top.
    t_round = 0.24
    cap = 1.0 - np.sqrt(np.clip(1.0 - (1.0 - np.minimum(t / t_round, 1.0)) ** 2, 0.0, 1.0))
    med_r = (m_med + (lat - m_med) * cap).astype(np.float32)
    # The aortic knob bulges into the left upper lung.
    knob = 0.022 * W * np.exp(-(((ys - 0.30 * H) / (0.03 * H)) ** 2))
    med_l = np.maximum(med_r, m_med + knob).astype(np.float32)

    # Diaphragm: a dome under each lung, steeper laterally, rising gently toward the midline.
    x_dome_r, x_dome_l = xc - 0.5 * l_base, xc + 0.5 * l_base
    dome_y = np.where(right_side, dome_r, dome_l).astype(np.float32)
    x_dome = np.where(right_side, x_dome_r, x_dome_l).astype(np.float32)
    lateral = np.abs(xs - xc) > np.abs(x_dome - xc)
    coef = np.where(lateral, 1.0, 0.35).astype(np.float32)
    diaphragm = dome_y + (cp_y - dome_y) * coef * ((xs - x_dome) / (0.5 * l_base)) ** 2

    # Body outline: neck, shoulders, chest wall, abdomen.
    body_half = (
        np.interp(
            ys / H, [0.0, 0.07, 0.14, 0.3, 0.7, 1.0], [0.12, 0.14, 0.47, 0.455, 0.445, 0.43]
        ).astype(np.float32)
        * W
    )
    body_soft = _ramp((body_half[:, None] - ax[None, :]) / edge)
    chord = np.sqrt(np.clip(1.0 - (ax[None, :] / body_half[:, None]) ** 2, 0.0, 1.0))
    A = (0.55 + 0.55 * chord) * body_soft  # attenuation map
    del chord

    # Thorax (inner thoracic cavity) and lungs.
    med = np.where(right_side[None, :], med_r[:, None], med_l[:, None])
    d_lat = (lat[:, None] - ax[None, :]) / edge
    d_bottom = (diaphragm[None, :] - ys[:, None]) / edge
    above_apex = ys[:, None] < apex_y - edge
    thorax_soft = _ramp(np.minimum(d_lat, d_bottom))
    thorax_soft[np.broadcast_to(above_apex, thorax_soft.shape)] = 0.0
    d_med = (ax[None, :] - med) / edge
    lung_soft = _ramp(np.minimum(np.minimum(d_lat, d_bottom), d_med))
    lung_soft[np.broadcast_to(above_apex, lung_soft.shape)] = 0.0
    # Lungs are thin near their walls: darker in the middle of each field.
    depth = np.sqrt(np.clip(np.minimum(d_lat, d_med) * edge / (0.07 * W), 0.0, 1.0))
    del d_lat, d_med, d_bottom, med

    # Heart: an ellipse reaching further to the patient's left, sitting on the left dome.
    thoracic_width = 2.0 * l_base
    heart_width = ctr * thoracic_width
    a_right, a_left = 0.36 * heart_width, 0.64 * heart_width
    b_heart = (0.125 + 0.12 * (ctr - 0.45)) * H
    y_heart = dome_l - 0.055 * H
    a = np.where(right_side, a_right, a_left).astype(np.float32)[None, :]
    r2 = ((xs[None, :] - xc) / a) ** 2 + ((ys[:, None] - y_heart) / b_heart) ** 2
    heart_soft = _ramp((1.0 - np.sqrt(r2)) * min(a_right, b_heart) / edge)
    heart_soft[ys > dome_l + 0.02 * H, :] = 0.0
    heart_body = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    del r2
    lung_soft *= 1.0 - heart_soft

    # Lungs are air: remove attenuation; the heart adds a little (it is thick soft tissue).
    markings = _smooth_noise(anatomy_rng, H, W, cell=0.012 * W)
    hilum_r = (xc - 0.12 * W, 0.42 * H)
    hilum_l = (xc + 0.12 * W, 0.43 * H)
    near_hila = _gaussians(xs, ys, (hilum_r, hilum_l), 0.16 * W, 0.2 * H)
    # Lung behind the heart still lowers the heart's density a little (retrocardiac lung).
    A -= 0.75 * (lung_soft + 0.25 * heart_soft) * (0.4 + 0.6 * depth)
    A += lung_soft * (0.05 + 0.05 * near_hila) * np.abs(markings)
    A += 0.04 * heart_soft * heart_body
    del depth, heart_body

    # Trachea (air column) above the carina.
    trachea = _ramp((0.018 * W - np.abs(xs - xc - 0.004 * W)) / edge)[None, :]
    rows = (ys > 0.02 * H) & (ys < 0.33 * H)
    A[rows, :] -= 0.22 * trachea

    # Spine: vertebral bodies with darker disc spaces.
    period = 0.036 * H
    phase = (ys / period) % 1.0
    vertebrae = 1.0 - 0.35 * np.exp(-(((phase - 0.5) / 0.07) ** 2))
    spine = _ramp((0.04 * W - ax) / edge)
    A += 0.32 * vertebrae[:, None] * spine[None, :]

    # Gastric bubble under the left dome.
    gx, gy = xc + 0.17 * W, dome_l + 0.05 * H
    bubble = ((xs[None, :] - gx) / (0.06 * W)) ** 2 + ((ys[:, None] - gy) / (0.025 * H)) ** 2
    A -= 0.25 * _ramp((1.0 - bubble) * 0.025 * H / edge) * (ys[:, None] > dome_l + edge)
    del bubble

    # Clavicles: S-shaped bands from the sternal ends out to the shoulders.
    n = np.arange(int(0.06 * W), int(0.36 * W), dtype=np.float32)
    for side in (-1.0, 1.0):
        u = (n - n[0]) / (n[-1] - n[0])
        y_curve = (0.165 - 0.055 * u + 0.012 * np.sin(2 * np.pi * u) + jit(0.004)) * H
        _band(A, xc + side * n, y_curve, 0.011 * H, 0.30, cortex=0.25)

    # Ribs: posterior ribs curving down laterally; fainter anterior ribs sloping down medially.
    for side in (-1.0, 1.0):
        for k in range(10):
            y0 = (0.135 + 0.052 * k + jit(0.003)) * H
            reach = float(np.interp(y0, ys, lat)) + 0.02 * W
            d = np.arange(int(0.045 * W), int(reach), dtype=np.float32)
            if d.size < 2:
                continue
            u = d / reach
            y_curve = y0 - 0.025 * H * np.sin(np.pi * u) + (0.06 + 0.004 * k) * H * u**2
            _band(A, xc + side * d, y_curve, (0.0085 + 0.0004 * k) * H, 0.13, cortex=0.35)
            if k < 6:
                y_curve_a = y0 + 0.05 * H + 0.09 * H * (1.0 - u)
                _band(A, xc + side * d, y_curve_a, 0.007 * H, 0.05)

    finding = np.zeros((H, W), dtype=bool)
    finding_lobe = None
    if label == "CHF":
        # Perihilar ("bat wing") haze, fading toward the periphery.
        haze = _gaussians(xs, ys, (hilum_r, hilum_l), 0.09 * W * 2**0.5, 0.10 * H * 2**0.5)
        haze *= 1.0 + 0.3 * markings
        A += 0.30 * haze * lung_soft
        # Pleural fluid blunts both costophrenic angles (a meniscus rising along the wall).
        fluid_height = np.array([0.055, 0.045]) * H * (1.0 + 0.2 * disease_rng.random(2))
        fluid = np.zeros((H, W), dtype=np.float32)
        for i, side_cols in enumerate((right_side, ~right_side)):
            dist_wall = (lat[:, None] - ax[None, :]) / (0.05 * W)
            level = cp_y - fluid_height[i] * np.exp(-np.clip(dist_wall, 0.0, None))
            f = _ramp((ys[:, None] - level) / edge) * side_cols[None, :]
            fluid = np.maximum(fluid, f * thorax_soft)
        A += 0.55 * fluid * (lung_soft > 0.0)
        # Kerley B lines: short horizontal septal lines at the lung bases, near the walls.
        for side in (-1.0, 1.0):
            for _ in range(7):
                yk = cp_y - disease_rng.uniform(0.02, 0.12) * H
                length = disease_rng.uniform(0.015, 0.035) * W
                start = float(np.interp(yk, ys, lat)) - disease_rng.uniform(0.0, 0.02) * W
                d = np.arange(int(start - length), int(start), dtype=np.float32)
                _band(A, xc + side * d, np.full(d.shape, yk, np.float32), 0.0012 * H, 0.05)
        finding = (
            (heart_soft > 0.5)
            | ((haze > 0.5) & (lung_soft > 0.5))
            | ((fluid > 0.5) & (thorax_soft > 0.5))
        )
        del haze, fluid
    elif label == "Pneumonia":
        finding_lobe = lobe or LOBES[int(disease_rng.integers(len(LOBES)))]
        lobe_region = _lobe_region(finding_lobe, xs, ys, xc, right_side, lung_soft, H, W)
        center = _pick_center(disease_rng, lobe_region, H, W)
        radius = disease_rng.uniform(0.07, 0.10) * W
        wobble = _smooth_noise(disease_rng, H, W, cell=0.04 * W)
        dist = np.sqrt(((xs[None, :] - center[0]) ** 2) + ((ys[:, None] - center[1]) ** 2))
        blob = _ramp((1.0 - dist / radius - 0.25 * wobble) * radius / (3 * edge))
        consolidation = blob * lobe_region
        texture = 0.8 + 0.2 * np.clip(wobble, -1.0, 1.0)
        A += 0.5 * consolidation * texture
        finding = consolidation > 0.5
        del wobble, dist, blob
    del markings

    heart = heart_soft > 0.5
    thorax = thorax_soft > 0.5
    lungs = lung_soft > 0.5
    body = body_soft > 0.5
    masks = {
        "body": body,
        "thorax": thorax,
        "right_lung": lungs & right_side[None, :],
        "left_lung": lungs & ~right_side[None, :],
        "lungs": lungs,
        "heart": heart,
        "mediastinum": thorax & ~lungs & ~heart & (np.abs(xs - xc) < 0.12 * W)[None, :],
        "finding": finding,
    }

    # Detector response: bright where attenuation is high, with quantum noise.
    img = 250.0 + 3500.0 * (1.0 - np.exp(-1.25 * np.clip(A, 0.0, None)))
    del A
    if noise > 0:
        img += noise * noise_rng.standard_normal((H, W), dtype=np.float32) * (12.0 + 0.008 * img)
    image = np.clip(np.rint(img), 0, MAX_VALUE).astype(np.uint16)
    del img
    sample = image[::4, ::4][body[::4, ::4]]
    lo, hi = np.percentile(sample, [1.0, 99.0]) if sample.size else (0.0, float(MAX_VALUE))
    spacing = _FIELD_HEIGHT_MM / H
    return Phantom(
        image=image,
        label=label,
        masks=masks,
        ctr=cardiothoracic_ratio(heart, thorax),
        seed=seed,
        pixel_spacing_mm=(round(spacing, 6), round(spacing, 6)),
        window_center=float(round((lo + hi) / 2.0)),
        window_width=float(max(1.0, round(hi - lo))),
        finding_lobe=finding_lobe,
        anatomy={
            "midline_x": float(xc),
            "apex_y": float(apex_y),
            "costophrenic_y": float(cp_y),
            "target_ctr": float(ctr),
        },
    )


def _gaussians(
    xs: np.ndarray,
    ys: np.ndarray,
    centers: tuple[tuple[float, float], ...],
    sx: float,
    sy: float,
) -> np.ndarray:
    """Max of separable Gaussian bumps exp(-(dx/sx)^2 - (dy/sy)^2), as outer products."""
    out = None
    for cx, cy in centers:
        g = np.exp(-(((ys - cy) / sy) ** 2))[:, None] * np.exp(-(((xs - cx) / sx) ** 2))[None, :]
        out = g if out is None else np.maximum(out, g, out=out)
    return out.astype(np.float32, copy=False)


def _lobe_region(
    lobe: str,
    xs: np.ndarray,
    ys: np.ndarray,
    xc: float,
    right_side: np.ndarray,
    lung_soft: np.ndarray,
    H: int,
    W: int,
) -> np.ndarray:
    """Approximate lobes on a PA view: fissures as horizontal or oblique lines per side."""
    side_cols = right_side if lobe.startswith("right") else ~right_side
    yy = ys[:, None]
    ax = np.abs(xs - xc)[None, :]
    # The oblique fissure runs down and outward; the horizontal (minor) fissure only on the right.
    oblique = 0.40 * H + 0.25 * ax
    if lobe == "right upper":
        rows = yy < 0.40 * H
    elif lobe == "right middle":
        rows = (yy >= 0.40 * H) & (yy < oblique + 0.08 * H)
    elif lobe == "right lower":
        rows = yy >= oblique + 0.08 * H
    elif lobe == "left upper":
        rows = yy < oblique + 0.04 * H
    else:
        rows = yy >= oblique + 0.04 * H
    return lung_soft * (rows & side_cols[None, :])


def _pick_center(
    rng: np.random.Generator, region: np.ndarray, H: int, W: int
) -> tuple[float, float]:
    """A seeded point well inside ``region`` (sampled on a coarse grid for speed)."""
    step = max(1, min(H, W) // 128)
    coarse = region[::step, ::step] > 0.9
    ys, xs = np.nonzero(coarse)
    if ys.size == 0:
        ys, xs = np.nonzero(region[::step, ::step] > 0.0)
    # Prefer points far from the region's border: erode by keeping those with full neighbours.
    from scipy.ndimage import binary_erosion

    inner = binary_erosion(coarse, iterations=max(1, coarse.shape[1] // 25))
    iy, ix = np.nonzero(inner)
    if iy.size:
        ys, xs = iy, ix
    i = int(rng.integers(ys.size))
    return float(xs[i] * step), float(ys[i] * step)
