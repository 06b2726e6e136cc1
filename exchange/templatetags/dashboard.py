"""Template helpers for the dashboard. Nothing here marks text safe: values stay escaped by the
template engine; these helpers only decide whether a value may become a link, or a CSS class."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django import template

from members.choices import Tlp

register = template.Library()

_TLP_CLASSES = {value: value.replace("+", "-") for value in Tlp.values}
_TLP_LABELS = dict(Tlp.choices)


def http_url(value: Any) -> str:
    """`value` if it is an absolute http(s) URL with a host, else the empty string: links to
    `javascript:`, `data:` or anything else are never rendered."""
    if not isinstance(value, str) or len(value) > 2000:
        return ""
    text = value.strip()
    if any(ord(ch) < 0x21 for ch in text):  # control characters and spaces hide schemes
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return text


register.filter("http_url", http_url)


@register.filter
def tlp_class(value: Any) -> str:
    """A CSS class for a TLP level; anything unknown reads as red, as it is treated."""
    return "tlp-" + _TLP_CLASSES.get(str(value), "red")


@register.filter
def tlp_label(value: Any) -> str:
    return str(_TLP_LABELS.get(str(value), "TLP:RED"))


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@register.filter
def is_list_of_text(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str | int | float) for v in value)


@register.filter
def is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None
