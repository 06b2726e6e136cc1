"""Builders for test data: members, tokens and STIX objects. Plain functions, no magic."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from members import services as member_services
from members.models import Member

_counter = itertools.count(1)

TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1 = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}


def make_member(
    name: str | None = None,
    *,
    groups: tuple[str, ...] = (),
    sectors: tuple[str, ...] = (),
    default_tlp: str = "green",
) -> Member:
    return member_services.create_member(
        name=name or f"Member {next(_counter)}",
        trust_groups=groups,
        sectors=sectors,
        default_tlp=default_tlp,
    )


def make_token(member: Member, scopes: str = "read,write,respond,admin") -> str:
    return member_services.create_token(member=member, name="test", scopes=scopes.split(",")).token


def stix_id(stix_type: str) -> str:
    return f"{stix_type}--{uuid.uuid4()}"


def indicator(
    *,
    value: str | None = None,
    modified: str = "2026-01-01T00:00:00.000Z",
    markings: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    value = value or f"203.0.113.{next(_counter) % 250}"
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": extra.pop("id", None) or stix_id("indicator"),
        "created": extra.pop("created", "2026-01-01T00:00:00.000Z"),
        "modified": modified,
        "name": f"Malicious address {value}",
        "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    if markings:
        obj["object_marking_refs"] = markings
    obj.update(extra)
    return obj


def sighting(of_ref: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "sighting",
        "spec_version": "2.1",
        "id": stix_id("sighting"),
        "created": "2026-01-02T00:00:00.000Z",
        "modified": "2026-01-02T00:00:00.000Z",
        "sighting_of_ref": of_ref,
        "count": 1,
        **extra,
    }


def bundle(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"type": "bundle", "id": stix_id("bundle"), "objects": list(objects)}


def ipv4(value: str | None = None) -> dict[str, Any]:
    """A cyber-observable (SCO): no created/modified, no created_by_ref."""
    n = next(_counter)
    return {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": stix_id("ipv4-addr"),
        "value": value or f"198.51.{(n // 250) % 250}.{n % 250}",
    }


def note(content: str = "seen at the edge", **extra: Any) -> dict[str, Any]:
    """A small SDO that validates cheaply: handy where thousands of objects are needed."""
    obj: dict[str, Any] = {
        "type": "note",
        "spec_version": "2.1",
        "id": stix_id("note"),
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "content": content,
        "object_refs": [stix_id("indicator")],
    }
    obj.update(extra)
    return obj


def new_version(obj: dict[str, Any], modified: str, **changes: Any) -> dict[str, Any]:
    """The same object at a later (or earlier) `modified`, with `changes` applied."""
    return {**obj, "modified": modified, **changes}
