"""Gaze rows of a lab made directly (no parse), for tests that need one of each, such as the
tenancy test over every API route."""

from __future__ import annotations

import io

from apps.gaze import services
from apps.gaze.models import Fixation, Reader, Reading, ReadingSession, Recording
from apps.labs.models import Lab
from ml.gaze import ImageRect


def gaze_reader(lab: Lab, code: str = "R1") -> Reader:
    return Reader.objects.get_or_create(lab=lab, code=code)[0]


def gaze_session(lab: Lab) -> ReadingSession:
    return ReadingSession.objects.create(lab=lab, reader=gaze_reader(lab), name="S")


def gaze_recording(lab: Lab, user=None) -> Recording:
    data = b"time,x,y\n0,10,10\n10,11,10\n20,12,11\n"
    [rec] = services.recording_upload(
        session=gaze_session(lab),
        uploaded_by=user,
        uploads=[services.Upload(file=io.BytesIO(data), filename="gaze.csv", size=len(data))],
        options={"time_unit": "ms", "space": "image_px", "image_key": "img"},
        enqueue=False,
    )
    return rec


def gaze_reading(lab: Lab, image, user=None) -> Reading:
    rec = gaze_recording(lab, user)
    return Reading.objects.create(
        lab=lab, session=rec.session, recording=rec, image=image, stimulus_name=image.key
    )


def gaze_fixation(lab: Lab, image, user=None) -> Fixation:
    reading = gaze_reading(lab, image, user)
    return Fixation.objects.create(
        lab=lab, reading=reading, index=0, start_ms=0.0, duration_ms=200.0, x=1.0, y=2.0,
        on_image=True, source="vendor",
    )  # fmt: skip


def reading_with_fixations(
    lab: Lab, session: ReadingSession, image, points, *, use_for_training=True, grade="good",
    step_ms: float = 100.0,
) -> Reading:  # fmt: skip
    """A reading of ``image`` in ``session`` with vendor fixations ``(x, y, duration_ms)`` in
    image pixels, drawn letterboxed on a 1920 x 1080 screen."""
    rect = ImageRect.fit((1920, 1080), (image.width, image.height))
    reading = Reading.objects.create(
        lab=lab, session=session, recording=gaze_recording(lab), image=image,
        stimulus_name=image.key, grade=grade, use_for_training=use_for_training,
        quality={"image_rect": [rect.left, rect.top, rect.width, rect.height]},
        fixation_count=len(points),
    )  # fmt: skip
    Fixation.objects.bulk_create(
        Fixation(
            lab=lab,
            reading=reading,
            index=k,
            start_ms=step_ms * k,
            duration_ms=d,
            x=x,
            y=y,
            on_image=0 <= x < image.width and 0 <= y < image.height,
            source="vendor",
        )  # fmt: skip
        for k, (x, y, d) in enumerate(points)
    )
    return reading
