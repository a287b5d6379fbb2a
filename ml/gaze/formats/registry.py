"""What each export format needs: its reader, the options it takes, its companion, or why it is
refused. The one table the readers' callers consult (the upload service included): nothing else
keeps a copy of it.

>>> spec = FORMATS["egd_cxr"]
>>> spec.read, spec.options, spec.companion     # read_egd_cxr, {kind, master_sheet}, master_sheet
>>> FORMATS["egd_cxr_master_sheet"].companion_for   # "egd_cxr"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ml.gaze.formats.egd_cxr import read_egd_cxr
from ml.gaze.formats.eyelink import EDF_REFUSAL, read_eyelink_asc, read_eyelink_dataviewer_report
from ml.gaze.formats.gazepoint import read_gazepoint
from ml.gaze.formats.generic import read_generic_csv
from ml.gaze.formats.pupil import read_neon, read_pupil_core
from ml.gaze.formats.reflacx import read_reflacx
from ml.gaze.formats.tobii import read_tobii_pro_lab, read_tobii_studio
from ml.gaze.recording import GazeRecording

# The option through which a reader learns the display size, where the export may not say it.
SCREEN_OPTION = "screen_size_px"


@dataclass(frozen=True)
class FormatSpec:
    """One export format.

    Attributes:
        name: The format's key (what :func:`ml.gaze.formats.detect_format` answers).
        family: The reader module that reads it (``eyelink``, ``tobii``, ``gazepoint``,
            ``egd_cxr``, ``reflacx``, ``pupil``, ``generic``).
        read: ``read(path, **options) -> GazeRecording``; None for a refused format.
        options: The keyword options ``read`` accepts (:data:`SCREEN_OPTION` and the companion
            option among them).
        companion: The option a companion file is passed as (``master_sheet`` for EGD-CXR,
            ``metadata`` for REFLACX, ``sections`` for Neon), or None.
        companion_for: For a companion format (e.g. ``egd_cxr_master_sheet``): the format whose
            exports it describes; it is attached to them rather than read.
        refusal: Why the format is not read, with the way out (EDF, summaries, companions sent
            alone, scene-camera positions); None for a format that is read.
        required: Options that must be declared for the file to be read (a generic CSV cannot
            say its time unit or coordinate space).
        required_hint: What to declare, for the message when ``required`` options are missing.
    """

    name: str
    family: str
    read: Callable[..., GazeRecording] | None = None
    options: frozenset[str] = frozenset()
    companion: str | None = None
    companion_for: str | None = None
    refusal: str | None = None
    required: frozenset[str] = frozenset()
    required_hint: str = ""

    @property
    def refused(self) -> bool:
        """Whether files of this format are refused (a companion is refused when sent alone)."""
        return self.refusal is not None

    @property
    def takes_screen_size(self) -> bool:
        """Whether the reader takes the display size (:data:`SCREEN_OPTION`)."""
        return SCREEN_OPTION in self.options

    def __post_init__(self) -> None:
        if (self.read is None) != (self.refusal is not None):
            raise ValueError(f"{self.name}: a format is either read or refused")
        if self.companion is not None and self.companion not in self.options:
            raise ValueError(f"{self.name}: the companion option must be one of its options")
        if not self.required <= self.options:
            raise ValueError(f"{self.name}: required options must be options")


def _refused(name: str, family: str, refusal: str, companion_for: str | None = None) -> FormatSpec:
    return FormatSpec(name, family, refusal=refusal, companion_for=companion_for)


def _companion(what: str, use: str) -> str:
    return f"this is {what}, not gaze data: {use}"


def _specs(*specs: FormatSpec) -> dict[str, FormatSpec]:
    return {s.name: s for s in specs}


FORMATS: dict[str, FormatSpec] = _specs(
    FormatSpec(
        "eyelink_asc", "eyelink", read_eyelink_asc,
        frozenset({"eye", SCREEN_OPTION, "trial_var"}),
    ),
    _refused("eyelink_edf", "eyelink", EDF_REFUSAL),
    FormatSpec(
        "eyelink_dataviewer_report", "eyelink", read_eyelink_dataviewer_report,
        frozenset({"stimulus_column", SCREEN_OPTION}),
    ),
    FormatSpec("tobii_pro_lab_tsv", "tobii", read_tobii_pro_lab, frozenset({SCREEN_OPTION})),
    FormatSpec("tobii_studio_tsv", "tobii", read_tobii_studio, frozenset({SCREEN_OPTION})),
    FormatSpec("gazepoint", "gazepoint", read_gazepoint, frozenset({"kind", SCREEN_OPTION})),
    _refused(
        "gazepoint_summary", "gazepoint",
        _companion(
            "a Gazepoint Analysis data summary (AOI statistics)",
            "export the all_gaze.csv or fixations.csv file instead",
        ),
    ),
    FormatSpec(
        "egd_cxr", "egd_cxr", read_egd_cxr, frozenset({"kind", "master_sheet"}),
        companion="master_sheet",
    ),
    _refused(
        "egd_cxr_master_sheet", "egd_cxr",
        _companion(
            "EGD-CXR's master_sheet.csv",
            "upload eye_gaze.csv or fixations.csv and give master_sheet.csv with it",
        ),
        companion_for="egd_cxr",
    ),
    FormatSpec(
        "reflacx", "reflacx", read_reflacx, frozenset({"metadata", "reading_id"}),
        companion="metadata",
    ),
    _refused(
        "reflacx_metadata", "reflacx",
        _companion(
            "REFLACX metadata",
            "upload a reading's fixations.csv or gaze.csv and give the metadata file with it",
        ),
        companion_for="reflacx",
    ),
    FormatSpec("pupil_core", "pupil", read_pupil_core, frozenset({"min_confidence"})),
    FormatSpec("neon", "pupil", read_neon, frozenset({"sections"}), companion="sections"),
    _refused(
        "neon_scene_camera", "pupil",
        "this is Pupil Cloud's gaze or fixations in scene-camera pixels: they move with the "
        "wearer's head and cannot be mapped to an image; run the Marker Mapper enrichment with "
        "markers around the image and upload its gaze.csv or fixations.csv (positions on the "
        "surface)",
    ),
    # Pupil Cloud's sections.csv (its section start and end times): attached to the Neon gaze or
    # fixations uploaded with it, whose sections it names as stimuli.
    _refused(
        "neon_sections", "pupil",
        _companion(
            "Pupil Cloud's sections.csv (a companion table)",
            "upload gaze.csv or fixations.csv and give sections.csv with it",
        ),
        companion_for="neon",
    ),
    # Other Pupil Cloud tables with a section id (surface positions, events): not read.
    _refused(
        "neon_companion", "pupil",
        _companion(
            "a Pupil Cloud companion table (surface positions / events)",
            "upload gaze.csv or fixations.csv, with sections.csv if you have it",
        ),
    ),
    FormatSpec(
        "generic_csv", "generic", read_generic_csv,
        frozenset(
            {"time_unit", "space", "columns", SCREEN_OPTION, "duration_unit", "delimiter"}
        ),
        required=frozenset({"time_unit", "space"}),
        required_hint="a generic CSV needs its time unit and coordinate space declared "
        "(options time_unit = ms, s, us or ns, and space = screen_px, image_px...)",
    ),
)  # fmt: skip


def upload_options() -> frozenset[str]:
    """The reader options an uploader may declare: every reader's, except the display size
    (the session gives it) and the companion options (the companion file gives them)."""
    every = frozenset().union(*(s.options for s in FORMATS.values()))
    companions = {s.companion for s in FORMATS.values() if s.companion}
    return every - {SCREEN_OPTION} - companions


def companion_formats() -> dict[str, str]:
    """Companion format -> the format whose exports it describes."""
    return {s.name: s.companion_for for s in FORMATS.values() if s.companion_for}
