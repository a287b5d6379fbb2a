"""Device and precision choices, and the RNG state round trip that exact resumption needs."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ml.runtime import Runtime, cpu_has_fast_bf16, resolve_precision, rng_state, set_rng_state


def test_auto_precision_on_the_cpu_follows_its_bf16_support() -> None:
    expected = "bf16" if cpu_has_fast_bf16() else "fp32"
    runtime = Runtime.create("cpu", "auto")
    assert runtime.precision == expected
    assert runtime.channels_last == (expected == "bf16")


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", None), ("bf16", torch.bfloat16)])
def test_explicit_precision_sets_the_autocast_dtype(precision: str, dtype) -> None:
    runtime = Runtime.create("cpu", precision, channels_last=True)
    assert runtime.autocast_dtype == dtype
    conv = runtime.prepare_model(torch.nn.Conv2d(1, 2, 3))
    x = runtime.prepare_input(torch.randn(1, 1, 8, 8))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with runtime.autocast():
        assert conv(x).dtype == (dtype or torch.float32)


def test_fp16_is_refused_on_the_cpu_and_unknown_names_everywhere() -> None:
    with pytest.raises(ValueError, match="fp16"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("int8", torch.device("cpu"))


def test_rng_state_round_trip() -> None:
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


@pytest.mark.gpu
def test_cuda_auto_precision_is_mixed() -> None:
    runtime = Runtime.create("cuda", "auto")
    assert runtime.precision in {"bf16", "fp16"} and runtime.channels_last
    assert runtime.grad_scaler().is_enabled() == (runtime.precision == "fp16")
