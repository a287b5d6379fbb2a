"""Saliency targets: the direct path against blurring at full resolution.

``python -m ml.bench_saliency`` builds, in one process and from the same fixations, the default
target (:func:`ml.saliency_maps.fixation_density`: separable Gaussians evaluated directly on the
640 x 512 letterboxed grid) and the same map the slow way: rasterise the duration-weighted
fixations at full resolution (3000 x 2500), blur with sigma = 1 degree (50 px), then letterbox it
with :func:`ml.data.resize.letterbox`'s transform. The full-resolution blur is timed with
``scipy.ndimage.gaussian_filter`` and, where OpenCV happens to be installed (it is a test-only
dependency), with ``cv2.GaussianBlur`` too; the speed-up is reported against the fastest. It also
prints how closely the two maps agree (Pearson correlation) and the machine and versions.
The acceptance target is a speed-up of at least 20x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy
from scipy import ndimage

from ml.data.resize import letterbox
from ml.saliency_maps import fixation_density


def _time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls (after one warm-up call), and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import cv2

        info["opencv"] = cv2.__version__
    except ImportError:
        info["opencv"] = None
    return info


def run(
    *,
    image_size: tuple[int, int] = (3000, 2500),
    target_size: tuple[int, int] = (640, 512),
    fixations: int = 300,
    sigma_px: float = 50.0,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Time both paths on the same synthetic reading and return the numbers.

    Args:
        image_size: ``(H, W)`` of the full-resolution image.
        target_size: ``(h, w)`` of the target (letterboxed).
        fixations: Number of fixations.
        sigma_px: Gaussian sigma in full-resolution pixels (1 degree of visual angle).
        repeats: Timed calls per path (median reported); the direct path gets 20x as many.
        seed: Seed for the synthetic fixations.

    Returns:
        A dict with the timings (seconds), the speed-ups, the agreement and the machine.
    """
    rng = np.random.default_rng(seed)
    height, width = image_size
    xy = np.column_stack(
        [
            np.clip(rng.normal(width / 2, width / 5, fixations), 0, width - 1),
            np.clip(rng.normal(height / 2, height / 5, fixations), 0, height - 1),
        ]
    )
    durations = rng.gamma(4.0, 60.0, fixations)
    _, transform = letterbox(np.zeros((height, width), dtype=np.float32), target_size)

    def direct() -> np.ndarray:
        return fixation_density(
            xy, durations, image_size=image_size, sigma_px=sigma_px, transform=transform
        )

    def raster() -> np.ndarray:
        counts = np.zeros(image_size, dtype=np.float32)
        np.add.at(counts, (xy[:, 1].astype(np.int64), xy[:, 0].astype(np.int64)), durations)
        return counts

    def finish(blurred: np.ndarray) -> np.ndarray:
        small = np.maximum(transform.apply(blurred), 0.0)
        return small / small.sum()

    def full_scipy() -> np.ndarray:
        blurred = ndimage.gaussian_filter(raster(), sigma_px, mode="constant", truncate=4.0)
        return finish(blurred)

    baselines: dict[str, Callable[[], np.ndarray]] = {"scipy_gaussian_filter": full_scipy}
    try:
        import cv2

        ksize = 2 * int(4.0 * sigma_px) + 1

        def full_opencv() -> np.ndarray:
            blurred = cv2.GaussianBlur(
                raster(), (ksize, ksize), sigma_px, borderType=cv2.BORDER_CONSTANT
            )
            return finish(blurred)

        baselines["opencv_GaussianBlur"] = full_opencv
    except ImportError:
        pass

    t_direct, m_direct = _time(direct, repeats * 20)
    results: dict[str, Any] = {
        "image_size": list(image_size),
        "target_size": list(target_size),
        "fixations": fixations,
        "sigma_px": sigma_px,
        "direct_s": t_direct,
        "full_resolution_s": {},
        "speedup": {},
        "correlation": {},
    }
    for name, fn in baselines.items():
        t_full, m_full = _time(fn, repeats)
        results["full_resolution_s"][name] = t_full
        results["speedup"][name] = t_full / t_direct
        results["correlation"][name] = float(np.corrcoef(m_direct.ravel(), m_full.ravel())[0, 1])
    fastest = min(results["full_resolution_s"], key=results["full_resolution_s"].get)
    results["speedup_vs_fastest"] = results["speedup"][fastest]
    results["fastest_baseline"] = fastest
    results["target_speedup"] = 20.0
    results["machine"] = _machine()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixations", type=int, default=300)
    parser.add_argument("--sigma-px", type=float, default=50.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    res = run(fixations=args.fixations, sigma_px=args.sigma_px, repeats=args.repeats)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    h, w = res["image_size"]
    th, tw = res["target_size"]
    print(
        f"saliency target: {res['fixations']} fixations, sigma {res['sigma_px']:g} px, "
        f"image {h}x{w} -> target {th}x{tw} (letterbox)"
    )
    print(f"  direct at target resolution: {res['direct_s'] * 1e3:9.2f} ms")
    for name, t_full in res["full_resolution_s"].items():
        print(
            f"  full-resolution blur ({name}): {t_full * 1e3:9.2f} ms  "
            f"speed-up {res['speedup'][name]:8.1f}x  correlation {res['correlation'][name]:.6f}"
        )
    verdict = "meets" if res["speedup_vs_fastest"] >= res["target_speedup"] else "MISSES"
    print(
        f"  speed-up against the fastest baseline ({res['fastest_baseline']}): "
        f"{res['speedup_vs_fastest']:.1f}x ({verdict} the {res['target_speedup']:g}x target)"
    )
    print("  machine: " + json.dumps(res["machine"]))


if __name__ == "__main__":
    main()
