"""Forms of the evaluation pages: start an evaluation, and the gallery's sorting and filters."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from apps.datasets.models import DatasetSnapshot, SnapshotItem
from apps.evaluation.models import METRICS
from apps.training.models import ModelVersion

METRIC_LABELS = {
    "kl": "KL", "kl_mit": "KL (MIT)", "cc": "CC", "sim": "SIM", "nss": "NSS",
    "auc_judd": "AUC-Judd", "auc_borji": "AUC-Borji", "sauc": "sAUC", "info_gain": "IG",
}  # fmt: skip
# Where lower is better (ml.stats.HIGHER_IS_BETTER): the worst come first when sorted descending.
LOWER_IS_BETTER = frozenset({"kl", "kl_mit"})


def worst_first(metric: str) -> str:
    """The ordering that puts the model's worst images first for ``metric``."""
    return f"-{metric}" if metric in LOWER_IS_BETTER else metric


def best_first(metric: str) -> str:
    return metric if metric in LOWER_IS_BETTER else f"-{metric}"


ORDERING_CHOICES = [
    *[(worst_first(m), f"{METRIC_LABELS[m]}, worst first") for m in METRICS],
    *[(best_first(m), f"{METRIC_LABELS[m]}, best first") for m in METRICS],
    ("key", "Image key"),
]
GALLERY_DEFAULT_ORDERING = "cc"


class _Numbered(forms.ModelChoiceField):
    """Choices named with their number and date: versions of one job config share a name."""

    def label_from_instance(self, obj) -> str:
        return f"{obj.name} (#{obj.pk}, {timezone.localtime(obj.created_at):%Y-%m-%d %H:%M})"


class EvaluationForm(forms.Form):
    version = _Numbered(
        queryset=ModelVersion.objects.none(), label="Model version",
        help_text="A model version of this lab.",
    )  # fmt: skip
    snapshot = _Numbered(
        queryset=DatasetSnapshot.objects.none(), required=False,
        empty_label="The snapshot it was trained on",
        help_text="A ready snapshot of this lab with the version's classes.",
    )  # fmt: skip
    split = forms.ChoiceField(choices=SnapshotItem.Split.choices, initial="test")
    name = forms.CharField(max_length=200, required=False, help_text="Leave empty for one made "
                           "of the version, snapshot and split.")  # fmt: skip

    def __init__(self, *args, lab, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = ModelVersion.objects.filter(lab=lab).order_by(
            "-created_at", "-id"
        )
        self.fields["snapshot"].queryset = DatasetSnapshot.objects.filter(
            lab=lab, status=DatasetSnapshot.Status.READY
        ).order_by("-created_at", "-id")


class GalleryForm(forms.Form):
    """The gallery's query string: sorting, the true class and right or wrong predictions."""

    ordering = forms.ChoiceField(
        choices=ORDERING_CHOICES, required=False, initial=GALLERY_DEFAULT_ORDERING,
        label="Sort by",
    )  # fmt: skip
    label = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Class")
    correct = forms.ChoiceField(
        choices=[("", "All predictions"), ("true", "Right"), ("false", "Wrong")],
        required=False, label="Prediction",
    )  # fmt: skip

    def __init__(self, *args, classes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [("", "All classes"),
                                        *[(str(i), c) for i, c in enumerate(classes)]]  # fmt: skip
        for field in self.fields.values():
            field.widget.attrs["data-autosubmit"] = ""
