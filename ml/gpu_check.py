"""One MT-UNet training step and one evaluation on CUDA, printing what a closing note needs.

``python -m ml.gpu_check``: exits 1 without a GPU. Full size (base 64, 640 x 512, batch 2) on the
auto precision (bf16 autocast where supported), then a short timed loop.
"""

from __future__ import annotations

import argparse
import time

import torch

from ml.data import ArrayDataset, blob_dataset
from ml.evaluate import evaluate
from ml.losses import MultiTaskLoss
from ml.models import count_params, create_model
from ml.runtime import Runtime
from ml.train import Trainee


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.gpu_check")
    parser.add_argument("--device", default="cuda", help="cpu runs the same script as a dry run")
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--base", type=int, default=64)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    runtime = Runtime.create(args.device, "auto")
    name = torch.cuda.get_device_name() if runtime.device.type == "cuda" else "CPU"
    print(
        f"device: {name} | torch {torch.__version__} | "
        f"precision {runtime.precision} | channels_last {runtime.channels_last}"
    )
    torch.manual_seed(0)
    data = blob_dataset(8, size=(args.height, args.width), seed=0)
    model = runtime.prepare_model(create_model("mtunet", base_channels=args.base))
    loss_fn = MultiTaskLoss().to(runtime.device)
    print(f"params: {count_params(model) + count_params(loss_fn)}")
    optimizer = torch.optim.Adam(list(model.parameters()) + list(loss_fn.parameters()), lr=1e-4)
    scaler = runtime.grad_scaler()
    images = runtime.prepare_input(torch.from_numpy(data["images"][:2]))
    targets = torch.from_numpy(data["targets"][:2]).to(runtime.device)
    labels = torch.from_numpy(data["labels"][:2]).to(runtime.device)

    def step() -> dict[str, torch.Tensor]:
        result = Trainee(model, loss_fn, optimizer, scaler, runtime).step(images, targets, labels)
        return {**result.losses, "dtype": result.output_dtype}

    cuda = runtime.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    first = step()
    _sync(runtime.device)
    first_s = time.perf_counter() - started
    print(
        f"train step 1: loss {first['total'].item():.4f} (cls {first['classification'].item():.4f}"
        f", sal {first['saliency'].item():.4f}) | autocast output dtype {first['dtype']} | "
        f"{first_s:.2f} s (includes cuDNN warm-up)"
    )
    steps = 10
    _sync(runtime.device)
    started = time.perf_counter()
    for _ in range(steps):
        last = step()
    _sync(runtime.device)
    per_step = (time.perf_counter() - started) / steps
    print(
        f"train steps 2-{steps + 1}: last loss {last['total'].item():.4f} | "
        f"{per_step * 1000:.1f} ms/step | {2 / per_step:.1f} images/s | peak memory "
        f"{torch.cuda.max_memory_allocated() / 2**30 if cuda else float('nan'):.2f} GiB"
    )

    dataset = ArrayDataset(data["images"], data["targets"], data["labels"])
    started = time.perf_counter()
    result = evaluate(model, dataset, runtime=runtime, batch_size=2, bootstrap=200)
    _sync(runtime.device)
    seconds = time.perf_counter() - started
    summary = result["summary"]
    print(
        f"evaluate: {summary['n_images']} images in {seconds:.2f} s | "
        f"KL {summary['saliency']['kl']['mean']:.4f} | CC {summary['saliency']['cc']['mean']:.4f}"
        f" | accuracy {summary['classification']['accuracy']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
