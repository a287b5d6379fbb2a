"""``includes/field.html``: every error of a field in one element with one id, which the control's
``aria-describedby`` names (two errors used to give two elements the same id)."""

from __future__ import annotations

import re

from django import forms
from django.template.loader import render_to_string


class _Form(forms.Form):
    name = forms.CharField()

    def clean_name(self):
        raise forms.ValidationError(["Too short.", "Not a slug."])


def test_every_error_of_a_field_is_under_one_id():
    form = _Form(data={"name": "x"})
    assert not form.is_valid()
    html = render_to_string("includes/field.html", {"field": form["name"]})
    assert re.findall(r'id="id_name_error"', html) == ['id="id_name_error"']
    block = re.search(r'<div class="error" id="id_name_error">(.*?)</div>', html, re.S).group(1)
    assert "Too short." in block and "Not a slug." in block
