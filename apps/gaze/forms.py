"""HTML forms of the gaze pages. They parse input only; every write goes through ``services``,
whose refusals the views show on the field they name (``apps.labs.forms.add_service_error``)."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.gaze.models import Reader, Reading, ReadingSession
from apps.labs.models import User

MAX_PX = 100_000  # the API's bound on screen sizes and padding


def _float(label: str, help_text: str = "", **kwargs: Any) -> forms.FloatField:
    return forms.FloatField(label=label, required=False, help_text=help_text, **kwargs)


def _size(label: str, help_text: str = "") -> forms.FloatField:
    """A size, rate or threshold: above zero (the service refuses zero, saying so)."""
    return _float(label, help_text, min_value=0)


# --- Readers ----------------------------------------------------------------------------------
class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        full = obj.get_full_name()
        return f"{full} ({obj.username})" if full else obj.username


class ReaderForm(forms.Form):
    code = forms.CharField(max_length=60, help_text="Unique in the lab, e.g. R1.")
    years_experience = forms.IntegerField(
        label="Years of experience", required=False, min_value=0, max_value=80
    )
    specialty = forms.CharField(max_length=120, required=False)
    user = MemberChoiceField(
        queryset=User.objects.none(),
        required=False,
        label="Lab member",
        empty_label="None: a coded reader",
        help_text="The member this reader is: they may then upload their own sessions.",
    )

    def __init__(self, *args: Any, members, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = members

    @classmethod
    def initial_of(cls, reader: Reader) -> dict[str, Any]:
        return {
            "code": reader.code,
            "years_experience": reader.years_experience,
            "specialty": reader.specialty,
            "user": reader.user_id,
        }


# --- Sessions ---------------------------------------------------------------------------------
class SessionForm(forms.Form):
    """Start a session: who reads, and the display (the rest is on the session page)."""

    reader = forms.ModelChoiceField(queryset=None)
    name = forms.CharField(max_length=200, required=False)
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    tracker_make = forms.CharField(max_length=120, required=False)
    sampling_rate_hz = forms.FloatField(required=False, min_value=0)
    screen_width_px = forms.IntegerField(initial=1920, min_value=1, max_value=MAX_PX)
    screen_height_px = forms.IntegerField(initial=1080, min_value=1, max_value=MAX_PX)
    screen_width_mm = forms.FloatField(required=False, min_value=0)
    screen_height_mm = forms.FloatField(required=False, min_value=0)
    viewing_distance_mm = forms.FloatField(required=False, min_value=0)
    image_placement = forms.ChoiceField(choices=ReadingSession.Placement.choices)
    fixation_detection = forms.ChoiceField(choices=ReadingSession.Detection.choices)

    def __init__(self, *args: Any, readers, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reader"].queryset = readers


# Changes to these change where fixations land or which there are: the recordings parsed before
# keep their old result until parsed again.
PARSE_FIELDS = frozenset({
    "sampling_rate_hz", "screen_width_px", "screen_height_px", "screen_width_mm",
    "screen_height_mm", "viewing_distance_mm", "image_placement", "fit_padding_px",
    "image_rect_left", "image_rect_top", "image_rect_width", "image_rect_height",
    "fixation_detection", "detection_velocity_deg_s", "detection_dispersion_deg",
    "detection_min_duration_ms",
})  # fmt: skip


class SessionEditForm(forms.Form):
    """Everything the API's session update accepts; ``reader`` only for researchers and admins
    (the view drops it for a reader editing their own session)."""

    reader = forms.ModelChoiceField(queryset=Reader.objects.none())
    name = forms.CharField(max_length=200, required=False)
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    notes = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    tracker_make = forms.CharField(max_length=120, required=False, label="Tracker make")
    tracker_model = forms.CharField(max_length=120, required=False, label="Tracker model")
    sampling_rate_hz = _size("Sampling rate (Hz)", "Empty: measured from the timestamps.")
    screen_width_px = forms.IntegerField(label="Screen width (px)", min_value=1, max_value=MAX_PX)
    screen_height_px = forms.IntegerField(label="Screen height (px)", min_value=1, max_value=MAX_PX)
    screen_width_mm = _size("Screen width (mm)", "Give both sizes in mm, or neither.")
    screen_height_mm = _size("Screen height (mm)")
    viewing_distance_mm = _size(
        "Viewing distance (mm)", "Eye to screen; with the sizes in mm it sets 1 degree of "
        "visual angle (the saliency maps' sigma)."
    )  # fmt: skip
    image_placement = forms.ChoiceField(
        choices=ReadingSession.Placement.choices, label="Image placement"
    )
    fit_padding_px = forms.IntegerField(
        label="Fit padding (px)", min_value=0, max_value=MAX_PX,
        help_text="Margin kept free on every side when the image is fitted.",
    )  # fmt: skip
    image_rect_left = _float("Image left (px)", "For a fixed rectangle placement.")
    image_rect_top = _float("Image top (px)")
    image_rect_width = _float("Image width (px)")
    image_rect_height = _float("Image height (px)")
    fixation_detection = forms.ChoiceField(
        choices=ReadingSession.Detection.choices, label="Fixations"
    )
    detection_velocity_deg_s = _size("I-VT velocity (deg/s)", "Empty: 30 deg/s.")
    detection_dispersion_deg = _size("I-DT dispersion (deg)", "Empty: 1.0 deg.")
    detection_min_duration_ms = _size(
        "Shortest fixation (ms)", "Empty: 60 ms for I-VT, 100 ms for I-DT."
    )

    FIELDSETS = (
        ("Session", ("reader", "name", "date", "notes")),
        ("Tracker", ("tracker_make", "tracker_model", "sampling_rate_hz")),
        ("Display geometry", (
            "screen_width_px", "screen_height_px", "screen_width_mm", "screen_height_mm",
            "viewing_distance_mm", "image_placement", "fit_padding_px", "image_rect_left",
            "image_rect_top", "image_rect_width", "image_rect_height",
        )),
        ("Fixation detection", (
            "fixation_detection", "detection_velocity_deg_s", "detection_dispersion_deg",
            "detection_min_duration_ms",
        )),
    )  # fmt: skip

    def __init__(self, *args: Any, readers=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if readers is None:
            del self.fields["reader"]
        else:
            self.fields["reader"].queryset = readers

    @classmethod
    def initial_of(cls, session: ReadingSession) -> dict[str, Any]:
        return {name: getattr(session, name) for name in cls.base_fields if name != "reader"} | {
            "reader": session.reader_id
        }

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (legend, [self[name] for name in names if name in self.fields])
            for legend, names in self.FIELDSETS
        ]

    def changes(self, session: ReadingSession) -> dict[str, Any]:
        """The cleaned fields whose value differs from ``session``'s."""
        current = {name: getattr(session, name) for name in self.cleaned_data}
        return {k: v for k, v in self.cleaned_data.items() if v != current[k]}


# --- Readings ---------------------------------------------------------------------------------
TRAINING_CHOICES = [("0", "Leave out of training"), ("1", "Use for training")]


def _on(value: str) -> bool:
    return value == "1"


class ReadingTrainingForm(forms.Form):
    use_for_training = forms.TypedChoiceField(choices=TRAINING_CHOICES, coerce=_on)


class BulkTrainingForm(forms.Form):
    grade = forms.ChoiceField(
        choices=Reading.Grade.choices, initial=Reading.Grade.POOR, label="Readings graded"
    )
    use_for_training = forms.TypedChoiceField(
        choices=TRAINING_CHOICES, coerce=_on, initial="0", label="Set them to"
    )
