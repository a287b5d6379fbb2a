"""The quality grade of a lab's readings: the lab's thresholds (its own where it set them, the
server's ``GAZE_QUALITY_THRESHOLDS`` for the rest), and the re-grade of what is stored after
they change.

A reading stores the measures its grade came from (``Reading.quality``: valid samples, gaze on
the image, validation error, sampling rates, fixation count), so a re-grade needs no re-parse:
:func:`ml.gaze.quality.grade_measures` grades them again. Readings stored without measures
(made directly, not by a parse) keep their grade. A reading of an image shown more than once in
its recording stores the measures of its worst showing with the fixations of all of them, so its
fewest-fixations check counts them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from apps.gaze.models import Reading, Recording
from apps.labs.models import Lab, User
from apps.labs.roles import Action
from apps.labs.services import lab_quality_thresholds, require_action
from ml.gaze import QualityThresholds
from ml.gaze.quality import grade_measures

BATCH = 2000


def thresholds_for_lab(*, lab: Lab) -> QualityThresholds:
    """The limits that grade ``lab``'s readings (every parse of the lab's recordings)."""
    return QualityThresholds(**lab_quality_thresholds(lab=lab))


@dataclass
class RegradeReport:
    readings: int = 0  # readings graded again
    changed: int = 0  # of them, with another grade now
    skipped: int = 0  # readings without stored measures (their grade is kept)
    training_changed: int = 0  # readings put into or left out of training with their grade
    recordings: int = 0  # recordings whose overall grade was graded again
    moves: dict[str, int] = field(default_factory=dict)  # "good → poor": count

    @property
    def summary(self) -> str:
        moves = ", ".join(f"{k}: {v}" for k, v in sorted(self.moves.items()))
        text = f"{self.readings} reading(s) graded again, {self.changed} with another grade"
        text += f" ({moves})." if moves else "."
        if self.training_changed:
            text += (
                f" {self.training_changed} reading(s) followed their new grade into or out of"
                " training."
            )
        if self.skipped:
            text += f" {self.skipped} reading(s) have no stored measures and keep their grade."
        return text


def _regraded(quality: dict, thresholds: QualityThresholds) -> dict:
    grade, reasons = grade_measures(quality, thresholds)
    return {**quality, "grade": grade, "reasons": reasons}


def lab_readings_regrade(*, lab: Lab, actor: User) -> RegradeReport:
    """Grade the lab's stored readings (and recordings) again with the lab's thresholds now.

    A reading whose training flag still says what its old grade gave (poor: left out; else:
    in) follows its new grade; one a person switched keeps their choice. Pooled saliency maps
    of images whose training readings change are made anew on their next request. Lab admins,
    like the thresholds themselves.
    """
    from apps.gaze.services.saliency import pooled_maps_invalidate

    require_action(user=actor, lab=lab, action=Action.MANAGE_MEMBERS)
    thresholds = thresholds_for_lab(lab=lab)
    report = RegradeReport()
    poor = Reading.Grade.POOR
    with transaction.atomic():
        rows = (
            Reading.objects.select_for_update()
            .filter(lab=lab)
            .only("id", "image_id", "quality", "grade", "use_for_training")
            .order_by("id")
        )
        changed: list[Reading] = []
        images: set[int] = set()
        for reading in rows.iterator(chunk_size=BATCH):
            quality = reading.quality or {}
            if "valid_pct" not in quality:
                report.skipped += 1
                continue
            report.readings += 1
            new = _regraded(quality, thresholds)
            grade = new["grade"]
            if grade == reading.grade and new == quality:
                continue
            if grade != reading.grade:
                report.changed += 1
                move = f"{reading.grade} → {grade}"
                report.moves[move] = report.moves.get(move, 0) + 1
                if reading.use_for_training == (reading.grade != poor):
                    training = grade != poor
                    if training != reading.use_for_training:
                        reading.use_for_training = training
                        report.training_changed += 1
                        images.add(reading.image_id)
            reading.grade, reading.quality = grade, new
            changed.append(reading)
            if len(changed) >= BATCH:
                Reading.objects.bulk_update(changed, ["grade", "quality", "use_for_training"])
                changed = []
        Reading.objects.bulk_update(changed, ["grade", "quality", "use_for_training"])
        if images:
            pooled_maps_invalidate(lab_id=lab.pk, image_ids=images)
        recordings = []
        for rec in Recording.objects.select_for_update().filter(lab=lab).only("id", "quality"):
            quality = rec.quality or {}
            if "valid_pct" not in quality:
                continue
            report.recordings += 1
            new = _regraded(quality, thresholds)
            if new != quality:
                rec.quality = new
                recordings.append(rec)
        Recording.objects.bulk_update(recordings, ["quality"], batch_size=BATCH)
    return report
