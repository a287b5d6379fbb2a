"""Synthetic chest X-ray lab: phantom radiographs, simulated radiologists and vendor-format writers.

Everything is seeded (the same seed gives byte-identical files) and needs only numpy and scipy
(pydicom for DICOM, Pillow for PNG, both imported when used). Typical use::

    from ml.synthetic import make_phantom, Radiologist, simulate_reading, write_dicom
    from ml.synthetic.writers import write_egd_cxr

    phantom = make_phantom("CHF", seed=1)
    write_dicom(phantom, "case.dcm", seed=1)
    reading = simulate_reading(phantom, Radiologist(style="focused"), rate_hz=60, seed=1)
    write_egd_cxr([reading], "egd/")
"""

from ml.synthetic.dicom import (
    FakeIdentity,
    PhiValue,
    WrittenDicom,
    fake_identity,
    write_dicom,
    write_png,
)
from ml.synthetic.phantom import LABELS, LOBES, Phantom, cardiothoracic_ratio, make_phantom
from ml.synthetic.radiologist import (
    DisplayGeometry,
    Radiologist,
    Reading,
    TrueFixations,
    View,
    letterbox_view,
    simulate_calibration,
    simulate_reading,
)

__all__ = [
    "LABELS",
    "LOBES",
    "DisplayGeometry",
    "FakeIdentity",
    "Phantom",
    "PhiValue",
    "Radiologist",
    "Reading",
    "TrueFixations",
    "View",
    "WrittenDicom",
    "cardiothoracic_ratio",
    "fake_identity",
    "letterbox_view",
    "make_phantom",
    "simulate_calibration",
    "simulate_reading",
    "write_dicom",
    "write_png",
]
