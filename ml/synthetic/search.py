"""Where a simulated radiologist looks: the search plan of one reading, as image-pixel targets
with the zone each belongs to (the anatomy's zones from the phantom's masks; a systematic tour or
a glance then the finding; each zone's conspicuous spots, shared by every reader of the image;
consecutive targets at least a saccade apart). ``ml.synthetic.radiologist`` turns the plan into
fixations, saccades and samples.
"""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING

import numpy as np

from ml.synthetic.phantom import Phantom

if TYPE_CHECKING:
    from ml.synthetic.radiologist import Radiologist

__all__ = ["plan_targets"]


def _zones(phantom: Phantom) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """Anatomical zones as coarse pixel lists, sampled on a grid for speed."""
    step = max(1, min(phantom.height, phantom.width) // 200)
    masks = {k: m[::step, ::step] for k, m in phantom.masks.items()}
    zones: dict[str, np.ndarray] = {}
    for side in ("right", "left"):
        lung = masks[f"{side}_lung"]
        rows = np.flatnonzero(lung.any(axis=1))
        if rows.size == 0:
            continue
        top, bottom = rows[0], rows[-1]
        mid = (top + bottom) // 2
        cp = bottom - (bottom - top) // 7
        yy = np.arange(lung.shape[0])[:, None]
        zones[f"{side}_upper"] = lung & (yy < mid)
        zones[f"{side}_lower"] = lung & (yy >= mid) & (yy < cp)
        zones[f"{side}_cp"] = lung & (yy >= cp)
    zones["heart"] = masks["heart"]
    zones["mediastinum"] = masks["mediastinum"]
    zones["finding"] = masks["finding"]
    out = {}
    for name, m in zones.items():
        ys, xs = np.nonzero(m)
        if ys.size:
            out[name] = (xs * step, ys * step)
    return out, step


# Within a zone, readers are drawn to the same few conspicuous spots of the image (a vessel
# crossing, a rib end, the edge of an opacity: bottom-up saliency that every reader shares), a
# share of their fixations falling around one of them; the rest scan the zone at random.
SPOT_SHARE = 0.75
SPOTS_PER_ZONE = 2
MIN_STEP = 0.08  # of the shorter side: consecutive fixations 1.5 to 2 degrees apart at least
SPOT_SPREAD = 0.035  # of the image's shorter side: about a degree on a 24-inch screen


def _conspicuous(
    phantom: Phantom, zones: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, list[tuple[float, float]]]:
    """The conspicuous spots of each zone of this image: the same for every reader (seeded by
    the phantom, not the reader)."""
    rng = np.random.default_rng([phantom.seed, 7, zlib.crc32(phantom.label.encode())])
    out = {}
    for zone in sorted(zones):
        xs, ys = zones[zone]
        idx = rng.integers(0, xs.size, SPOTS_PER_ZONE)
        out[zone] = [(float(xs[i]), float(ys[i])) for i in idx]
    return out


def plan_targets(
    rng: np.random.Generator,
    phantom: Phantom,
    reader: Radiologist,
    n_fix: int,
    spot_rng: np.random.Generator | None = None,
) -> tuple[list[tuple[float, float]], list[str]]:
    """The search: a list of image-pixel targets with the zone each belongs to."""
    zones, step = _zones(phantom)
    spots = _conspicuous(phantom, zones)
    spot_rng = spot_rng if spot_rng is not None else np.random.default_rng([phantom.seed, 13])
    spread = SPOT_SPREAD * min(phantom.height, phantom.width)

    def sample(zone: str, n: int, sort: bool = False) -> list[tuple[float, float]]:
        xs, ys = zones[zone]
        idx = rng.integers(0, xs.size, n)
        pts = [
            (float(xs[i] + rng.uniform(0, step)), float(ys[i] + rng.uniform(0, step))) for i in idx
        ]
        # Drawn to one of the zone's conspicuous spots instead (a stream of its own, so that
        # the rest of the reading is drawn as without spots).
        for k in range(len(pts)):
            if spot_rng.random() < SPOT_SHARE:
                sx, sy = spots[zone][int(spot_rng.integers(0, len(spots[zone])))]
                pts[k] = (
                    float(np.clip(sx + spot_rng.normal(0, spread), 0, phantom.width - 1)),
                    float(np.clip(sy + spot_rng.normal(0, spread), 0, phantom.height - 1)),
                )
        if sort:  # a systematic reader goes down a zone, not back and forth
            pts.sort(key=lambda p: p[1] + rng.normal(0, 0.02 * phantom.height))
        return pts

    has_finding = "finding" in zones
    p_find = 0.0
    if has_finding:
        p_find = 0.2 + 0.35 * reader.expertise
        p_find *= 0.8 if reader.style == "systematic" else 1.2
        p_find = min(p_find, 0.7)
    n_find = int(round(p_find * n_fix))
    n_rest = max(1, n_fix - n_find)

    if reader.style == "systematic":
        tour = [
            z
            for z in (
                "right_upper",
                "right_lower",
                "right_cp",
                "left_upper",
                "left_lower",
                "left_cp",
                "heart",
                "mediastinum",
            )
            if z in zones
        ]
        weights = np.array([3, 3, 1, 3, 3, 1, 2, 1.5][: len(tour)], dtype=float)
        counts = np.maximum(1, np.round(weights / weights.sum() * n_rest)).astype(int)
        targets: list[tuple[float, float]] = []
        names: list[str] = []
        # The finding is noticed during the tour; experts notice it earlier in the tour.
        notice = int(rng.integers(0, max(1, int(len(tour) * (1.2 - reader.expertise)))))
        first_visit = n_find // 2 if n_find else 0
        for k, (zone, c) in enumerate(zip(tour, counts, strict=True)):
            pts = sample(zone, int(c), sort=True)
            targets += pts
            names += [zone] * len(pts)
            if has_finding and k == min(notice, len(tour) - 1) and first_visit:
                targets += sample("finding", first_visit)
                names += ["finding"] * first_visit
        if has_finding and n_find - first_visit > 0:
            targets += sample("finding", n_find - first_visit)
            names += ["finding"] * (n_find - first_visit)
    else:
        center = (
            phantom.width / 2 + rng.normal(0, 0.03 * phantom.width),
            phantom.height * 0.45 + rng.normal(0, 0.03 * phantom.height),
        )
        targets, names = [center], ["overview"]
        lungs = [z for z in zones if z.endswith(("upper", "lower", "cp")) or z == "heart"]
        others = [lungs[int(i)] for i in rng.integers(0, len(lungs), max(0, n_rest - 1))]
        checks = [(*sample(z, 1)[0], z) for z in others]
        found = sample("finding", n_find) if has_finding else []
        # Straight to the finding after the overview, then checks with returns to the finding.
        lead = int(round(len(found) * (0.4 + 0.4 * reader.expertise)))
        for p in found[:lead]:
            targets.append(p)
            names.append("finding")
        rest = [(p[0], p[1], "finding") for p in found[lead:]] + checks
        order = rng.permutation(len(rest))
        for i in order:
            targets.append((rest[i][0], rest[i][1]))
            names.append(rest[i][2])
    return _apart(spot_rng, targets, MIN_STEP * min(phantom.height, phantom.width), phantom), names


def _apart(
    rng: np.random.Generator, targets: list[tuple[float, float]], step: float, phantom: Phantom
) -> list[tuple[float, float]]:
    """Targets moved so that each is at least ``step`` from the one before: two looks at one
    spot are two fixations only if a saccade separates them."""
    out: list[tuple[float, float]] = []
    for x, y in targets:
        if out:
            px, py = out[-1]
            dx, dy = x - px, y - py
            dist = math.hypot(dx, dy)
            if dist < step:
                angle = math.atan2(dy, dx) if dist > 0 else float(rng.uniform(0, 2 * math.pi))
                x = px + step * math.cos(angle)
                y = py + step * math.sin(angle)
                if not (0 <= x < phantom.width and 0 <= y < phantom.height):  # the other way
                    x, y = px - step * math.cos(angle), py - step * math.sin(angle)
        out.append(
            (float(np.clip(x, 0, phantom.width - 1)), float(np.clip(y, 0, phantom.height - 1)))
        )
    return out
