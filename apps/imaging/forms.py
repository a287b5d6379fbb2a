"""HTML forms of the imaging pages. They parse input only; every write goes through ``services``."""

from __future__ import annotations

from django import forms


class LabFormMixin(forms.Form):
    """The lab the page showed: a lab switched in another tab meanwhile is not written to."""

    lab = forms.CharField(required=False, widget=forms.HiddenInput)


class ImageClassForm(LabFormMixin):
    name = forms.CharField(
        max_length=60,
        label="New class",
        help_text="A label images may carry, e.g. “Effusion”.",
    )


class ImageClassRenameForm(forms.Form):
    name = forms.CharField(max_length=60, label="Name")


class LabelImportForm(LabFormMixin):
    file = forms.FileField(
        label="CSV file",
        help_text="A key or dicom_id column, and a label column or one 0/1 column per class "
        "(EGD-CXR's master_sheet.csv: Normal, CHF, pneumonia).",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    findings = forms.CharField(
        required=False,
        max_length=2000,
        label="Finding columns",
        help_text="Optional: columns to store as finding flags, comma-separated "
        "(e.g. consolidation, effusion).",
    )

    def finding_columns(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data.get("findings", "").split(",") if c.strip()]


class LabelApplyForm(forms.Form):
    token = forms.CharField(max_length=64, widget=forms.HiddenInput)
