"""The snapshot build benchmark's report, at a tiny size (it runs in its own process, with its
own throw-away database and media folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def test_bench_reports_both_builds_and_their_memory(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "apps.datasets.bench", "--images", "15", "--small", "12",
         "--height", "60", "--width", "50", "--size", "32x32", "--fixations", "5",
         "--json", str(out)],
        cwd=settings.BASE_DIR, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["images"] == 15 and report["shape"] == [60, 50] and report["size"] == [32, 32]
    assert report["readings"] == 2 * 15 + 2 * 12
    assert report["ingest_seconds_excluded"] > 0
    small, large = report["builds"]["small"], report["builds"]["large"]
    assert (small["images"], large["images"]) == (12, 15)
    for build in (small, large):
        assert build["images_per_second"] > 0
        assert build["peak_rss_mib"] >= build["rss_before_mib"] > 0
        assert build["snapshot_mib"] > 0
    assert report["peak_growth_mib"] == round(large["peak_rss_mib"] - small["peak_rss_mib"], 1)
