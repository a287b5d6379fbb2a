"""What the API guide's test needs: the guide's code blocks, and the input files its reader
supplies (``images.zip``, ``labels.csv``, ``reading.asc``), made from seeded phantoms and a
simulated radiologist with ``ml.synthetic``'s writers."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "api-guide.md"

# The languages the test runs; a fence of any other language (or none) would not be run.
LANGUAGES = ("sh", "python")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)

# 12 images, 4 per class: the 2/1/7 split then gives each class 2 test, 1 validation and 1
# training image. Every other image is a DICOM, the others PNGs.
CLASSES = ("Normal", "CHF", "Pneumonia")
N_IMAGES = 12
N_TEST = 6
SIZE = (300, 250)  # rows, columns: small phantoms, quick to ingest
RATE_HZ = 250.0


def fences(text: str) -> list[tuple[str, str]]:
    """Every fenced block of ``text`` as (language, code), in order."""
    return [(lang.strip(), code) for lang, code in FENCE.findall(text)]


def blocks(language: str, text: str | None = None) -> list[str]:
    """The guide's blocks of ``language``, in order."""
    text = GUIDE.read_text() if text is None else text
    return [code for lang, code in fences(text) if lang == language]


def keys() -> list[str]:
    return [f"case{i + 1:02d}" for i in range(N_IMAGES)]


def write_inputs(folder: Path) -> dict[str, Path]:
    """Write the guide's input files into ``folder``; returns them by name."""
    from ml.synthetic import (
        DisplayGeometry,
        Radiologist,
        make_phantom,
        simulate_reading,
        write_dicom,
        write_png,
    )
    from ml.synthetic.writers import write_eyelink_asc

    folder.mkdir(parents=True, exist_ok=True)
    work = folder / "phantoms"
    work.mkdir(exist_ok=True)
    reader = Radiologist(name="RAD1", style="systematic", expertise=0.8)
    readings, images, lines = [], [], ["key,label"]
    for i, key in enumerate(keys()):
        label = CLASSES[i % len(CLASSES)]
        phantom = make_phantom(label, seed=i + 1, height=SIZE[0], width=SIZE[1])
        if i % 2 == 0:
            path = work / f"{key}.dcm"
            write_dicom(phantom, path, seed=i + 1)
        else:
            path = write_png(phantom, work / f"{key}.png")
        images.append(path)
        lines.append(f"{key},{label}")
        readings.append(
            simulate_reading(
                phantom,
                reader,
                geometry=DisplayGeometry(),
                rate_hz=RATE_HZ,
                seed=i + 1,
                image_key=key,
            )  # fmt: skip
        )
    archive = folder / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in images:
            zf.write(path, path.name)
    labels = folder / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    written = write_eyelink_asc(readings, folder / "reading.asc", seed=1)
    written["truth"].unlink()
    for path in images:
        path.unlink()
    work.rmdir()
    return {"images.zip": archive, "labels.csv": labels, "reading.asc": written["asc"]}
