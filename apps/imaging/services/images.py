"""Changes to stored images: label, finding flags and key; delete with its files."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.imaging.models import Image
from apps.imaging.services.labels import vocabulary
from apps.labs.models import User
from apps.labs.roles import Action
from apps.labs.services import require_action


def _clean_findings(findings: dict) -> dict[str, bool]:
    if not isinstance(findings, dict):
        raise ValidationError({"findings": "Give finding flags as an object of name: true/false."})
    clean = {}
    for name, value in findings.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise ValidationError({"findings": f"{name!r} is not a finding name (1-60 chars)."})
        if not isinstance(value, bool):
            raise ValidationError({"findings": f"{name}: give true or false, not {value!r}."})
        clean[name.strip()] = value
    if len(clean) > 100:
        raise ValidationError({"findings": "At most 100 finding flags per image."})
    return clean


def image_update(
    *,
    image: Image,
    actor: User,
    label: str | None = None,
    findings: dict | None = None,
    key: str | None = None,
) -> Image:
    """Change an image's label (a class of its lab, or "" for none), finding flags or key."""
    require_action(user=actor, lab=image.lab, action=Action.WRITE)
    fields = []
    if label is not None:
        if label.strip():
            classes = vocabulary(image.lab)
            name = classes.get(label.strip().lower())
            if name is None:
                names = ", ".join(classes.values())
                raise ValidationError(
                    {"label": f"{label!r} is not a class of {image.lab.name} ({names})."}
                )
            image.label = name
        else:
            image.label = ""
        fields.append("label")
    if findings is not None:
        image.findings = _clean_findings(findings)
        fields.append("findings")
    if key is not None:
        key = key.strip()
        if not key:
            raise ValidationError({"key": "A key cannot be empty."})
        if Image.objects.filter(lab=image.lab, key=key).exclude(pk=image.pk).exists():
            raise ValidationError({"key": f"The key {key!r} is already used by another image."})
        image.key = key
        fields.append("key")
    if fields:
        try:
            with transaction.atomic():
                image.save(update_fields=fields)
        except IntegrityError:
            raise ValidationError({"key": f"The key {key!r} is already used."}) from None
    return image


def image_delete(*, image: Image, actor: User) -> None:
    """Delete an image and, once the deletion is committed, its files no other row names."""
    require_action(user=actor, lab=image.lab, action=Action.WRITE)
    with transaction.atomic():
        image.delete()  # its files follow once this commits (apps.core.files)
