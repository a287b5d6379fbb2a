"""Serve Plotly.js from the plotly package's own bundle, so that no CDN and no copy is needed."""

from __future__ import annotations

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC_PATH = "vendor/plotly.min.js"


class PlotlyFinder(BaseFinder):
    """Finds ``vendor/plotly.min.js`` (and only it) inside the installed plotly package."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(PLOTLY_JS.parent))
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        from django.core.checks import Error

        if not PLOTLY_JS.is_file():
            return [Error(f"Plotly.js is missing from the plotly package: {PLOTLY_JS}")]
        return []

    def find(self, path, find_all=False, **kwargs):
        if path == STATIC_PATH:
            return [str(PLOTLY_JS)] if find_all else str(PLOTLY_JS)
        return []

    def list(self, ignore_patterns):
        yield PLOTLY_JS.name, self.storage
