"""Admin inputs that say what their value means: '= 3 天' next to a duration, '= 30%' next to a ratio.

The stored forms stay what Django edits ('3 00:00:00', '0.3000'); the hint is
how a trader reads them, in the reader's language.
"""

from datetime import timedelta

from django import forms
from django.db import models
from django.utils.dateparse import parse_duration
from django.utils.html import format_html

from qmtjq import display


def _hint(html: str, text: str) -> str:
    return format_html('{} <span class="readable-hint">= {}</span>', html, text) if text else html


class ReadableDurationInput(forms.TextInput):
    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        if not isinstance(value, timedelta):
            value = parse_duration(str(value)) if value not in (None, "") else None
        return _hint(html, display.duration(value) if value is not None else "")


class RatioPercentInput(forms.NumberInput):
    def render(self, name, value, attrs=None, renderer=None):
        html = super().render(name, value, attrs, renderer)
        text = display.percent(value, places=4) if value not in (None, "") else ""
        return _hint(html, "" if text == display.DASH else text)


class ReadableFieldsMixin:
    """For a ModelAdmin or inline: duration fields get the duration hint, `ratio_fields` the percent hint."""

    ratio_fields: tuple[str, ...] = ()

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.DurationField):
            kwargs.setdefault("widget", ReadableDurationInput)
        elif db_field.name in self.ratio_fields:
            kwargs.setdefault("widget", RatioPercentInput(attrs={"step": "any"}))
        return super().formfield_for_dbfield(db_field, request, **kwargs)
