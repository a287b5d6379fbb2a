"""Load a complete synthetic demo lab through the services a user's uploads go through.

    python manage.py make_demo_lab [--images 60] [--readers 3] [--lab "Demo Lab"] [--seed 0]
                                   [--size full|small] [--user demo] [--out DIR]

Phantom chest X-rays (Normal, CHF and Pneumonia in turn; every fifth stored as MONOCHROME1) are
written as DICOM files with a fake patient identity in every PHI attribute and ingested with
``image_upload_batch`` (so they are de-identified, stored, previewed and labelled); each
phantom's lungs, heart, mediastinum and finding masks become the image's regions. Each reader is
a coded reader of the lab with one reading session; a simulated radiologist of their own style
and expertise reads every image, and the readings are written in a real vendor format (EyeLink
ASC, EGD-CXR CSVs, Tobii Pro Lab TSV, Gazepoint CSV, in turn), uploaded with
``recording_upload`` and parsed here with ``recording_parse``.

Idempotent: the same arguments give the same bytes, so a second run finds every image already in
the lab (the imaging service reports the duplicates) and every export already uploaded to its
session (by sha256), and adds nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q, Sum

from apps.gaze import services as gaze
from apps.gaze.models import Fixation, Reader, Reading, ReadingSession, Recording
from apps.imaging import services as imaging
from apps.imaging.models import DeidentificationAudit, Image
from apps.labs.models import Lab, User
from apps.labs.roles import Action, role_allows
from apps.labs.selectors import lab_roles_for_user
from ml.synthetic import (
    LABELS,
    DisplayGeometry,
    Radiologist,
    make_phantom,
    simulate_reading,
    write_dicom,
)
from ml.synthetic.radiologist import Reading as SimulatedReading
from ml.synthetic.writers import (
    write_egd_cxr,
    write_eyelink_asc,
    write_gazepoint_csv,
    write_tobii_pro_lab_tsv,
)

# (rows, columns): "full" is a realistic detector, "small" a quick demo (previews look the same).
SIZES = {"full": (3000, 2500), "small": (1200, 1000)}
MAX_IMAGES = 1000
MAX_READERS = 26
MAX_SEED = 2**31 - 1
MONOCHROME1_EVERY = 5
# The reading room every session describes (the simulated radiologists' own default screen).
SCREEN = DisplayGeometry()


@dataclass(frozen=True)
class Tracker:
    """An eye tracker and the export a demo reader's session is uploaded in."""

    export: str
    make: str
    model: str
    rate_hz: float
    # (readings, folder, reader code, seed) -> the files to upload, the gaze export first.
    write: Callable[[list[SimulatedReading], Path, str, int], list[Path]]


def _eyelink(readings, folder: Path, code: str, seed: int) -> list[Path]:
    return [write_eyelink_asc(readings, folder / f"demo_{code}.asc", seed=seed)["asc"]]


def _egd_cxr(readings, folder: Path, code: str, seed: int) -> list[Path]:
    paths = write_egd_cxr(readings, folder, seed=seed)
    return [paths["fixations"], paths["master_sheet"]]


def _tobii(readings, folder: Path, code: str, seed: int) -> list[Path]:
    path = folder / f"demo_{code}_Data_Export.tsv"
    return [write_tobii_pro_lab_tsv(readings, path, seed=seed, participant=code)["tsv"]]


def _gazepoint(readings, folder: Path, code: str, seed: int) -> list[Path]:
    return [write_gazepoint_csv(readings, folder, user=f"demo_{code}", seed=seed)["fixations"]]


TRACKERS = (
    Tracker("EyeLink ASC", "SR Research", "EyeLink 1000 Plus", 500.0, _eyelink),
    Tracker("EGD-CXR fixations.csv", "Gazepoint", "GP3 HD", 60.0, _egd_cxr),
    Tracker("Tobii Pro Lab TSV", "Tobii", "Pro Fusion", 120.0, _tobii),
    Tracker("Gazepoint CSV", "Gazepoint", "GP3", 60.0, _gazepoint),
)


@dataclass(frozen=True)
class ReaderPlan:
    code: str
    style: str
    expertise: float
    years: int
    specialty: str
    offset_deg: tuple[float, float]
    tracker: Tracker

    @property
    def radiologist(self) -> Radiologist:
        return Radiologist(
            name=self.code, style=self.style, expertise=self.expertise,
            calibration_offset_deg=self.offset_deg,
        )  # fmt: skip

    @property
    def session_name(self) -> str:
        return f"Demo reading {self.code} ({self.tracker.model})"

    @property
    def notes(self) -> str:
        return (
            f"Synthetic demo data (make_demo_lab): a simulated radiologist, {self.style} search, "
            f"expertise {self.expertise:.2f}, calibration offset {self.offset_deg[0]:+.2f}, "
            f"{self.offset_deg[1]:+.2f} deg; {self.tracker.make} {self.tracker.model} at "
            f"{self.tracker.rate_hz:g} Hz, uploaded as {self.tracker.export}."
        )


# style, expertise, years of experience, specialty, calibration offset (deg).
_PEOPLE = (
    ("systematic", 0.9, 18, "Thoracic radiology", (0.12, -0.08)),
    ("focused", 0.8, 9, "Emergency radiology", (-0.18, 0.22)),
    ("systematic", 0.3, 2, "Radiology resident", (0.3, 0.25)),
    ("focused", 0.55, 5, "General radiology", (-0.25, -0.3)),
)


def reader_plans(n: int) -> list[ReaderPlan]:
    """``n`` demo readers R1, R2...: styles, expertise and trackers in turn."""
    plans = []
    for k in range(n):
        style, expertise, years, specialty, offset = _PEOPLE[k % len(_PEOPLE)]
        turn = k // len(_PEOPLE)  # later rounds: a little less expert, a little more offset
        plans.append(
            ReaderPlan(
                code=f"R{k + 1}",
                style=style,
                expertise=round(max(0.1, expertise - 0.1 * turn), 2),
                years=max(1, years - 2 * turn),
                specialty=specialty,
                offset_deg=(offset[0] * (1 + 0.2 * turn), offset[1] * (1 + 0.2 * turn)),
                tracker=TRACKERS[k % len(TRACKERS)],
            )  # fmt: skip
        )
    return plans


@dataclass(frozen=True)
class ImagePlan:
    index: int
    label: str
    photometric: str
    seed: int  # seeds the phantom, the fake identity and the readings
    dicom_id: str  # a MIMIC-style dicom_id: the file's stem, so the image's key


def image_plans(n: int, *, seed: int, size: str) -> list[ImagePlan]:
    """``n`` images: labels in turn, every fifth MONOCHROME1, ids and seeds from a hash."""
    plans = []
    for i in range(n):
        h = hashlib.sha256(f"make_demo_lab/{seed}/{size}/{i}".encode()).hexdigest()
        plans.append(
            ImagePlan(
                index=i,
                label=LABELS[i % len(LABELS)],
                photometric="MONOCHROME1"
                if i % MONOCHROME1_EVERY == MONOCHROME1_EVERY - 1
                else "MONOCHROME2",
                seed=int(h[40:48], 16),
                dicom_id="-".join(h[j : j + 8] for j in range(0, 40, 8)),
            )  # fmt: skip
        )
    return plans


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not within {low}..{high}")
        return value

    return parse


def find_lab(value: str) -> Lab:
    """A lab by slug, id or name (case-insensitive)."""
    lab = Lab.objects.filter(slug=value).first()
    if lab is None and value.isdigit():
        lab = Lab.objects.filter(pk=int(value)).first()
    if lab is None:
        named = list(Lab.objects.filter(name__iexact=value)[:2])
        if len(named) > 1:
            raise CommandError(f"more than one lab is named {value!r}; give its slug or id")
        lab = named[0] if named else None
    if lab is None:
        raise CommandError(
            f"no lab with slug, id or name {value!r} (python manage.py demo_setup creates "
            "'Demo Lab')"
        )
    return lab


class Command(BaseCommand):
    help = (
        "Load a synthetic demo lab (phantom DICOMs, simulated readers' recordings in vendor "
        "formats) through the upload services; idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--images", type=_bounded(1, MAX_IMAGES), default=60,
            help=f"Phantom chest X-rays to load (1-{MAX_IMAGES}; default 60).",
        )  # fmt: skip
        parser.add_argument(
            "--readers", type=_bounded(1, MAX_READERS), default=3,
            help=f"Simulated readers, each reading every image (1-{MAX_READERS}; default 3).",
        )  # fmt: skip
        parser.add_argument(
            "--lab", default="Demo Lab", help="Lab slug, id or name (default 'Demo Lab')."
        )
        parser.add_argument(
            "--seed", type=_bounded(0, MAX_SEED), default=0,
            help="Seed: the same seed gives the same images and recordings (default 0).",
        )  # fmt: skip
        parser.add_argument(
            "--size", choices=sorted(SIZES), default="full",
            help="Phantom size: full (2500 x 3000, default) or small (1000 x 1200, quick).",
        )  # fmt: skip
        parser.add_argument(
            "--user", default="demo",
            help="Username that uploads (a researcher or admin of the lab; default demo).",
        )  # fmt: skip
        parser.add_argument(
            "--out", default=None,
            help="Write the generated files (DICOMs, exports, truth.json) here and keep them "
            "(default: a temporary folder, removed afterwards).",
        )  # fmt: skip

    def handle(self, *args, images, readers, lab, seed, size, user, out, **options):
        self.verbosity = options.get("verbosity", 1)
        # Checked again here: call_command(images=0) does not go through the parser's types.
        for name, value, low, high in (
            ("images", images, 1, MAX_IMAGES),
            ("readers", readers, 1, MAX_READERS),
            ("seed", seed, 0, MAX_SEED),
        ):
            if not isinstance(value, int) or not low <= value <= high:
                raise CommandError(f"--{name} must be a whole number within {low}..{high}")
        if size not in SIZES:
            raise CommandError(f"--size must be one of {', '.join(sorted(SIZES))}, not {size!r}")
        the_lab = find_lab(str(lab))
        uploader = User.objects.filter(username=user).first()
        if uploader is None:
            raise CommandError(f"no user {user!r} (python manage.py demo_setup creates 'demo')")
        role = lab_roles_for_user(user=uploader).get(the_lab.pk)
        if not role_allows(role, Action.WRITE):
            raise CommandError(
                f"{user} is {'a ' + role if role else 'not a member'} of {the_lab.name}; "
                "the uploader must be a researcher or admin of the lab"
            )
        imaging.image_class_defaults_ensure(lab=the_lab)
        classes = {n.lower() for n in the_lab.image_classes.values_list("name", flat=True)}
        missing = [name for name in LABELS if name.lower() not in classes]
        if missing:
            raise CommandError(
                f"{the_lab.name} has no class {', '.join(missing)}; add it (POST "
                "/api/v1/image-classes/) or use another lab"
            )
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            self._run(the_lab, uploader, images, readers, seed, size, Path(out), keep=True)
        else:
            with tempfile.TemporaryDirectory(prefix="make_demo_lab-") as tmp:
                self._run(the_lab, uploader, images, readers, seed, size, Path(tmp), keep=False)

    def _say(self, text: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(text)

    def _run(self, lab, user, n_images, n_readers, seed, size, folder: Path, keep: bool) -> None:
        started = time.monotonic()
        height, width = SIZES[size]
        plans = reader_plans(n_readers)
        self._say(
            f"Loading {n_images} {size} phantoms ({width} x {height}) and {n_readers} readers "
            f"into {lab.name!r} (seed {seed})..."
        )
        # 1. Images, one at a time (a full-size phantom and its masks are about 100 MB), each
        # read at once by every reader so that only the readings are kept.
        results: Counter[str] = Counter()
        refused: list[str] = []
        stored: list[Image] = []
        readings: dict[str, list[SimulatedReading]] = {p.code: [] for p in plans}
        dicom_dir = folder / "dicom"
        dicom_dir.mkdir(exist_ok=True)
        for plan in image_plans(n_images, seed=seed, size=size):
            phantom = make_phantom(plan.label, seed=plan.seed, height=height, width=width)
            path = dicom_dir / f"{plan.dicom_id}.dcm"
            write_dicom(phantom, path, photometric=plan.photometric, seed=plan.seed)
            with path.open("rb") as fh:
                upload = imaging.Upload(
                    file=fh, filename=path.name, size=path.stat().st_size, label=plan.label
                )
                [result] = imaging.image_upload_batch(lab=lab, uploaded_by=user, uploads=[upload])
            if not keep:  # a full-size DICOM is 15 MB
                path.unlink()
            results[result.status] += 1
            if result.image is None:
                refused.append(result.message)
                continue
            stored.append(result.image)
            # Its lungs, heart, mediastinum and finding as mask regions (once).
            if not result.image.regions.filter(source="phantom").exists():
                imaging.phantom_regions_store(image=result.image, phantom=phantom)
            for reader in plans:
                readings[reader.code].append(
                    simulate_reading(
                        phantom,
                        reader.radiologist,
                        geometry=SCREEN,
                        rate_hz=reader.tracker.rate_hz,
                        seed=plan.seed,
                        image_key=result.image.key,
                    )  # fmt: skip
                )
            del phantom
            done = plan.index + 1
            if self.verbosity >= 2 or (self.verbosity >= 1 and done % 10 == 0 < n_images - done):
                self._say(f"  {done} of {n_images} images ({time.monotonic() - started:.0f} s)")
        for message in refused:
            self.stderr.write(f"  refused: {message}")

        # 2. Readers, sessions and their recordings.
        recordings: Counter[str] = Counter()
        failures: list[str] = []
        sessions: list[ReadingSession] = []
        for reader in plans:
            session = self._session(lab, user, reader)
            sessions.append(session)
            if not readings[reader.code]:
                continue
            reader_dir = folder / reader.code
            reader_dir.mkdir(exist_ok=True)
            paths = reader.tracker.write(readings.pop(reader.code), reader_dir, reader.code, seed)
            rec, existing = self._upload(session, user, paths)
            recordings["already there" if existing else "new"] += 1
            if rec.status != Recording.Status.DONE:
                failures.append(f"{rec.original_name}: {rec.status}; {'; '.join(rec.errors)}")
            self._say(
                f"  {reader.code}: {rec.original_name} ({reader.tracker.export}) "
                f"{'already uploaded' if existing else 'uploaded'}, {rec.status}: "
                f"{rec.readings.count()} readings"
            )

        self._summary(
            lab=lab, stored=stored, results=results, plans=plans, sessions=sessions,
            recordings=recordings, seconds=time.monotonic() - started,
        )  # fmt: skip
        if refused or failures:
            raise CommandError(
                "the demo lab is incomplete: " + "; ".join([*refused, *failures][:5])
            )

    def _session(self, lab: Lab, user: User, plan: ReaderPlan) -> ReadingSession:
        reader = Reader.objects.filter(lab=lab, code__iexact=plan.code).first()
        if reader is None:
            reader = gaze.reader_create(
                lab=lab, code=plan.code, years_experience=plan.years, specialty=plan.specialty
            )
        session = ReadingSession.objects.filter(
            lab=lab, reader=reader, name=plan.session_name
        ).first()
        if session is None:
            session = gaze.reading_session_create(
                lab=lab, reader=reader, created_by=user, name=plan.session_name,
                tracker_make=plan.tracker.make, tracker_model=plan.tracker.model,
                sampling_rate_hz=plan.tracker.rate_hz,
                screen_width_px=SCREEN.screen_width_px, screen_height_px=SCREEN.screen_height_px,
                screen_width_mm=SCREEN.screen_width_mm, screen_height_mm=SCREEN.screen_height_mm,
                viewing_distance_mm=SCREEN.viewing_distance_mm, notes=plan.notes,
            )  # fmt: skip
        return session

    def _upload(
        self, session: ReadingSession, user: User, paths: list[Path]
    ) -> tuple[Recording, bool]:
        """Upload the export (with its companion) unless the session has it already; parse it
        here when it is new (or was left queued by an interrupted run)."""
        export = paths[0]
        digest = hashlib.sha256(export.read_bytes()).hexdigest()
        rec = Recording.objects.filter(session=session, sha256=digest).first()
        existing = rec is not None
        if rec is None:
            gaze.check_can_upload(session=session, user=user)
            uploads = [gaze.tmp_upload(p) for p in paths]
            try:
                [rec] = gaze.recording_upload(
                    session=session, uploaded_by=user, uploads=uploads, enqueue=False
                )
            except gaze.RecordingRejected as exc:
                raise CommandError(str(exc)) from None
            finally:
                for u in uploads:
                    u.file.close()
        if rec.status == Recording.Status.QUEUED:
            rec = gaze.recording_parse(recording_id=rec.pk) or Recording.objects.get(pk=rec.pk)
        return rec, existing

    def _summary(self, *, lab, stored, results, plans, sessions, recordings, seconds) -> None:
        images = Image.objects.filter(pk__in=[i.pk for i in stored])
        labels = Counter(images.values_list("label", flat=True))
        mono1 = images.filter(photometric_interpretation="MONOCHROME1").count()
        audited = DeidentificationAudit.objects.filter(image__in=images).count()
        reads = Reading.objects.filter(session__in=sessions, image__in=images)
        grades = Counter(reads.values_list("grade", flat=True))
        totals = reads.aggregate(n=Count("id"), fixations=Sum("fixation_count"))
        fixations = Fixation.objects.filter(reading__in=reads).aggregate(
            n=Count("id"), on=Count("id", filter=Q(on_image=True))
        )
        on_pct = 100.0 * fixations["on"] / fixations["n"] if fixations["n"] else 0.0
        new_images = results.get("created", 0)
        new_recordings = recordings.get("new", 0)
        say = self.stdout.write
        say(f"Demo lab {lab.name!r} ({seconds:.0f} s):")
        say(
            f"  images:     {images.count()} ({new_images} new, {results.get('duplicate', 0)} "
            f"already in the lab, {results.get('rejected', 0)} refused); "
            + ", ".join(f"{labels.get(name, 0)} {name}" for name in LABELS)
            + f"; {mono1} MONOCHROME1; {audited} de-identified DICOMs with an audit entry"
        )
        say(
            "  readers:    "
            + ", ".join(
                f"{p.code} ({p.style}, expertise {p.expertise:.2f}, {p.tracker.export})"
                for p in plans
            )
        )
        say(
            f"  sessions:   {len(sessions)}; recordings: {new_recordings} new, "
            f"{recordings.get('already there', 0)} already uploaded"
        )
        say(
            f"  readings:   {totals['n']} ({totals['fixations'] or 0} fixations, "
            f"{on_pct:.1f} % on the image)"
        )
        say("  quality:    " + ", ".join(f"{grades.get(g, 0)} {g}" for g in Reading.Grade.values))
        added = new_images or new_recordings
        # The last line sums it up (scripts/demo prints it).
        say(
            f"Demo data: {images.count()} phantom chest X-rays ("
            + ", ".join(f"{labels.get(name, 0)} {name}" for name in LABELS)
            + f"), {len(plans)} simulated readers ("
            + ", ".join(f"{p.code} {p.tracker.export}" for p in plans)
            + f"), {totals['n']} readings with {totals['fixations'] or 0:,} fixations"
            + ("" if added else "; all there already, nothing added")
        )
