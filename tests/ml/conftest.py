"""Shared setup for the ml tests: markers, a fixed seed, and few threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too, so that tests/ml runs cleanly even without the project's pytest config.
    config.addinivalue_line("markers", "slow: takes more than about 10 s on 2 CPU cores")
    config.addinivalue_line("markers", "gpu: needs CUDA; skipped where torch sees no GPU")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; torch.cuda.is_available() is False here")
    here = Path(__file__).parent
    for item in items:
        # This hook sees the whole session's items; only this folder's are ours to mark.
        if "gpu" in item.keywords and here in item.path.parents:
            item.add_marker(skip)
