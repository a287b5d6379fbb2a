"""``{% image_readings image %}``: the readings of an image, for the image page."""

from __future__ import annotations

from django import template

from apps.gaze import selectors

register = template.Library()


@register.inclusion_tag("gaze/_image_readings.html")
def image_readings(image):
    return {"readings": list(selectors.reading_list(lab=image.lab, image=image)[:200])}
