"""What must not appear in a member's anonymous publication besides its identity id: its
name, as the exchange knows it and as its STIX identity object gives it.

The names are looked up once per publish request (`traces_of`), then every object's text is
searched for them (`Traces.found_in`). A name counts where it stands as a whole word (any
case, any spacing), so "Quokka Savings" is found in "phish sent by QUOKKA  savings staff" and
in "x_quokka_savings" but not in "quokkasavings"; identifiers (`id`, `type`, `*_ref`,
`*_refs`) carry no names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from members.models import Member

from ..models import StixObject

# Properties that hold identifiers or fixed vocabulary, never free text.
_NOT_TEXT = frozenset({"id", "type", "spec_version", "created_by_ref"})


@dataclass(frozen=True)
class Traces:
    """The member's names as one case-insensitive, whole-word pattern (None: no names)."""

    pattern: re.Pattern[str] | None

    def found_in(self, data: dict[str, Any]) -> bool:
        if self.pattern is None:
            return False
        return any(self.pattern.search(text) for text in _texts(data))


def traces_of(member: Member) -> Traces:
    names = {member.name.strip()}
    identity = (
        StixObject.objects.filter(stix_id=member.identity_id, producer=member)
        .order_by("-modified")
        .values_list("body", flat=True)
        .first()
    )
    if identity is not None:
        stated = json.loads(identity).get("name")
        if isinstance(stated, str):
            names.add(stated.strip())
    words = [_as_pattern(name) for name in sorted(names) if name]
    if not words:
        return Traces(None)
    return Traces(re.compile("|".join(words), re.IGNORECASE))


def _as_pattern(name: str) -> str:
    """A name as a whole word: not inside a longer run of letters and digits, with any run of
    white space, "_" or "-" between its words (as in `x_quokka_savings` or a host name)."""
    body = r"[\s_\-]+".join(re.escape(word) for word in name.split())
    return rf"(?<![^\W_]){body}(?![^\W_])"


def _texts(value: Any, key: str = "") -> Iterator[str]:
    """Every string of an object that may carry free text: values, and the names of custom
    properties (`x_...`: the producer's own words; the standard names are the spec's)."""
    if key in _NOT_TEXT or key.endswith(("_ref", "_refs")):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for name, item in value.items():
            if name.startswith(("x_", "x-")):
                yield name
            yield from _texts(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item, key)
