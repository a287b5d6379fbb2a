"""Training and inference throughput of MT-UNet: the fp32 eager reference against the default path.

``python -m ml.bench`` measures, in one process and on the same data, images per second for a
training step (forward, loss, backward, Adam: ``ml.step.train_step``, the step ``ml.train`` runs)
and for inference, plus peak memory, at 320 x 256 and 640 x 512 with base 64 and batch 2, and
prints the speed ratios. It also trains both paths for 5 steps from the same initial weights on
fixed data and reports how far their losses differ.

The "default" path is what :func:`ml.train.train` picks with ``precision="auto"``: bf16 autocast
plus channels_last on CPUs with AMX or AVX512-BF16 and on CUDA, plain fp32 elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from ml.data import blob_dataset
from ml.losses import MultiTaskLoss
from ml.models import create_model
from ml.runtime import Runtime, cpu_has_fast_bf16
from ml.train import Trainee


class _PeakRSS:
    """Peak resident memory above the level at entry, sampled every 5 ms (CPU runs)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> _PeakRSS:
        self.base = self._rss()
        self.peak = self.base
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def increase_bytes(self) -> int:
        return self.peak - self.base


def _measure(fn: Callable[[], Any], runtime: Runtime, warmup: int, steps: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    cuda = runtime.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with _PeakRSS() as rss:
        started = time.perf_counter()
        for _ in range(steps):
            fn()
        if cuda:
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / steps
    memory = torch.cuda.max_memory_allocated() if cuda else rss.increase_bytes
    return {"seconds_per_step": seconds, "peak_memory_mib": memory / 2**20}


def _setup(runtime: Runtime, size: tuple[int, int], base: int, batch: int, seed: int):
    torch.manual_seed(seed)
    model = runtime.prepare_model(create_model("mtunet", base_channels=base))
    loss_fn = MultiTaskLoss().to(runtime.device)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(loss_fn.parameters()), lr=1e-4)
    data = blob_dataset(batch, size=size, seed=seed)
    images = runtime.prepare_input(torch.from_numpy(data["images"]))
    targets = torch.from_numpy(data["targets"]).to(runtime.device)
    labels = torch.from_numpy(data["labels"]).to(runtime.device)
    scaler = runtime.grad_scaler()
    trainee = Trainee(model, loss_fn, optimizer, scaler, runtime)

    def one_step() -> float:
        return float(trainee.step(images, targets, labels).losses["total"])

    @torch.no_grad()
    def infer_step() -> None:
        model.eval()
        with runtime.autocast():
            model(images)

    return one_step, infer_step


def bench(
    sizes: list[tuple[int, int]],
    base: int = 64,
    batch: int = 2,
    warmup: int = 1,
    steps: int = 3,
    loss_steps: int = 5,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Run the benchmark.

    Args:
        sizes: ``(H, W)`` resolutions.
        base: MT-UNet base channels.
        batch: images per step.
        warmup: untimed steps per measurement.
        steps: timed steps per measurement.
        loss_steps: training steps for the loss comparison (at the first size).
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: weights and data seed.

    Returns:
        A JSON-ready dict with the machine, each path's numbers per size, the ratios and the
        loss comparison.
    """
    reference = Runtime.create(device, "fp32", channels_last=False)
    default = Runtime.create(device, "auto")
    paths = {"reference": reference, "default": default}
    result: dict[str, Any] = {
        "machine": {
            "processor": _processor_name(),
            "threads": torch.get_num_threads(),
            "fast_bf16_cpu": cpu_has_fast_bf16(),
            "cuda": torch.cuda.get_device_name() if reference.device.type == "cuda" else None,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "paths": {
            name: {
                "precision": rt.precision,
                "channels_last": rt.channels_last,
                "device": str(rt.device),
            }
            for name, rt in paths.items()
        },
        "base_channels": base,
        "batch": batch,
        "sizes": {},
    }
    for size in sizes:
        entry: dict[str, Any] = {}
        for name, runtime in paths.items():
            train_step, infer_step = _setup(runtime, size, base, batch, seed)
            trained = _measure(train_step, runtime, warmup, steps)
            inferred = _measure(infer_step, runtime, warmup, steps)
            entry[name] = {
                "train_images_per_s": batch / trained["seconds_per_step"],
                "train_peak_memory_mib": trained["peak_memory_mib"],
                "infer_images_per_s": batch / inferred["seconds_per_step"],
                "infer_peak_memory_mib": inferred["peak_memory_mib"],
            }
        entry["train_speedup"] = (
            entry["default"]["train_images_per_s"] / entry["reference"]["train_images_per_s"]
        )
        entry["infer_speedup"] = (
            entry["default"]["infer_images_per_s"] / entry["reference"]["infer_images_per_s"]
        )
        result["sizes"][f"{size[0]}x{size[1]}"] = entry

    losses = {}
    for name, runtime in paths.items():
        train_step, _ = _setup(runtime, sizes[0], base, batch, seed)
        losses[name] = [train_step() for _ in range(loss_steps)]
    final_ref, final_default = losses["reference"][-1], losses["default"][-1]
    result["loss_check"] = {
        "size": f"{sizes[0][0]}x{sizes[0][1]}",
        "steps": loss_steps,
        "reference": losses["reference"],
        "default": losses["default"],
        "relative_difference": abs(final_default - final_ref) / abs(final_ref),
    }
    return result


def _processor_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _format(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        f"{machine['processor']} ({machine['threads']} threads, fast bf16: "
        f"{machine['fast_bf16_cpu']}), GPU: {machine['cuda']}, torch {machine['torch']}",
        "paths: "
        + ", ".join(
            f"{name} = {p['precision']}{' + channels_last' if p['channels_last'] else ''} "
            f"on {p['device']}"
            for name, p in result["paths"].items()
        ),
        f"MT-UNet base {result['base_channels']}, batch {result['batch']}",
        f"{'size':>9} {'path':>9} {'train img/s':>12} {'train MiB':>10} {'infer img/s':>12} "
        f"{'infer MiB':>10}",
    ]
    for size, entry in result["sizes"].items():
        for name in ("reference", "default"):
            e = entry[name]
            lines.append(
                f"{size:>9} {name:>9} {e['train_images_per_s']:12.3f} "
                f"{e['train_peak_memory_mib']:10.0f} {e['infer_images_per_s']:12.3f} "
                f"{e['infer_peak_memory_mib']:10.0f}"
            )
        lines.append(
            f"{size:>9} {'ratio':>9} {entry['train_speedup']:11.2f}x {'':>10} "
            f"{entry['infer_speedup']:11.2f}x"
        )
    check = result["loss_check"]
    lines.append(
        f"loss after {check['steps']} steps at {check['size']}: reference "
        f"{check['reference'][-1]:.5f}, default {check['default'][-1]:.5f} "
        f"(relative difference {100 * check['relative_difference']:.3f} %)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table (and optionally write the JSON)."""
    parser = argparse.ArgumentParser(prog="python -m ml.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="320x256,640x512", help="comma-separated HxW")
    parser.add_argument("--base", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--loss-steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    result = bench(
        sizes, args.base, args.batch, args.warmup, args.steps, args.loss_steps, args.device
    )
    print(_format(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
