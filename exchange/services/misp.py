"""MISP in and out, so a member's MISP can feed Phalanx and consume it. The conversions are
the `misp-stix` library's (the one MISP itself uses); this module only frames them.

Import: a MISP event (JSON, as MISP exports it) -> STIX 2.1 objects -> the publish service,
under the member's own identity. Event tags such as `tlp:amber` apply to every object of the
event, as they do in MISP. The MISP object UUIDs become the STIX ids, so importing the same
event again stores nothing new.

Export: the current indicators a member may read (the export filters apply) -> one MISP event.
Content that came from MISP in the first place (it carries `misp:type` labels) goes through the
converter that restores MISP attributes faithfully; the rest through the generic STIX one.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from django.conf import settings

from members.exceptions import PayloadTooLarge, PhalanxError
from members.models import Member

from .. import stix
from ..models import PublishStatus
from . import bundles
from .exports import ExportFilter, current_indicator_bodies
from .publish import PublishTarget

logger = logging.getLogger(__name__)


class MispError(PhalanxError):
    code = "bad_misp_event"


# --- import ------------------------------------------------------------------------------------


def _event_of(document: Any) -> dict[str, Any]:
    if isinstance(document, dict) and isinstance(document.get("Event"), dict):
        event = document["Event"]
    elif isinstance(document, dict) and "info" in document:
        event = document
    else:
        raise MispError("Send one MISP event: an object with an 'Event' object.")
    if not isinstance(event.get("info"), str) or not event["info"].strip():
        raise MispError("The MISP event needs an 'info' text.")
    for key in ("Attribute", "Object", "Tag", "Galaxy", "EventReport"):
        if key in event and not isinstance(event[key], list):
            raise MispError(f"The event's {key!r} must be a list.")
    objects = event.get("Object", [])
    if not all(isinstance(o, dict) for o in objects) or not all(
        isinstance(a, dict) for a in event.get("Attribute", [])
    ):
        raise MispError("Attributes and objects must be JSON objects.")
    size = len(event.get("Attribute", [])) + sum(
        len(o.get("Attribute", [])) if isinstance(o.get("Attribute"), list) else 0 for o in objects
    )
    limit = int(settings.PHALANX["MISP_IMPORT_MAX_ATTRIBUTES"])
    if size > limit:
        raise PayloadTooLarge(
            f"A MISP event may hold at most {limit} attributes (this one holds {size}).",
            code="too_many_attributes",
        )
    return event


def misp_event_to_stix(document: Any) -> list[dict[str, Any]]:
    """The STIX 2.1 objects for one MISP event, ready for `publish_objects`: the MISP
    organisation's identity is dropped and every `created_by_ref` with it (the publish service
    sets the member's), and the event's markings apply to objects that have none."""
    # misp-stix (with python-stix 1.x and cybox) is imported on first use, not at start-up:
    # it adds some 55 MB to every web, worker and beat process that never converts (S8).
    from misp_stix_converter import MISPtoSTIX21Parser

    event = _event_of(document)
    parser = MISPtoSTIX21Parser()
    try:
        parser.parse_misp_event({"Event": event})
        converted = json.loads(parser.bundle.serialize())
    except Exception as exc:  # the converter's failures are the input's: report, do not crash
        logger.info("MISP event conversion failed: %s", type(exc).__name__)
        raise MispError(
            f"The MISP event could not be converted: {type(exc).__name__}: {str(exc)[:200]}",
            code="misp_conversion_failed",
        ) from None
    objects = [o for o in converted.get("objects", []) if isinstance(o, dict)]
    creators = {o.get("created_by_ref") for o in objects} - {None}
    event_markings: list[str] = []
    for obj in objects:
        if obj.get("type") in ("report", "grouping") and obj.get("object_marking_refs"):
            event_markings = list(obj["object_marking_refs"])
    result = []
    for obj in objects:
        if obj.get("type") == "identity" and obj.get("id") in creators:
            continue
        obj = {k: v for k, v in obj.items() if k != "created_by_ref"}
        if (
            event_markings
            and stix.has_created_by_ref(str(obj.get("type")))
            and "object_marking_refs" not in obj
        ):
            obj["object_marking_refs"] = event_markings
        result.append(obj)
    return result


def import_event(*, member: Member, document: Any, target: PublishTarget) -> PublishStatus:
    """Convert a MISP event and publish it for `member` (202 path for large ones)."""
    objects = misp_event_to_stix(document)
    return bundles.publish_object_list(member=member, objects=objects, target=target)


# --- export ------------------------------------------------------------------------------------


def _from_misp(obj: dict[str, Any]) -> bool:
    labels = obj.get("labels")
    return isinstance(labels, list) and any(
        isinstance(label, str) and label.startswith("misp:type=") for label in labels
    )


def _convert(objects: list[dict[str, Any]], *, internal: bool, title: str) -> dict[str, Any]:
    from misp_stix_converter import ExternalSTIX2toMISPParser, InternalSTIX2toMISPParser
    from misp_stix_converter.tools import load_stix2_content

    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
    parser = InternalSTIX2toMISPParser() if internal else ExternalSTIX2toMISPParser()
    parser.load_stix_bundle(load_stix2_content(bundle))
    parser.parse_stix_bundle(
        single_event=True, title=title, producer=settings.PHALANX["EXCHANGE_NAME"]
    )
    problems = sum(len(v) for v in getattr(parser, "errors", {}).values())
    if problems:
        logger.info("MISP export: %d objects could not be converted", problems)
    event: dict[str, Any] = json.loads(parser.misp_event.to_json())
    return event


def export_event(*, member: Member, flt: ExportFilter) -> dict[str, Any]:
    """One MISP event (`{"Event": {...}}`) with the current indicators `member` may read."""
    limit = int(settings.PHALANX["MISP_EXPORT_MAX_INDICATORS"])
    objects = [
        json.loads(body) for body in current_indicator_bodies(member=member, flt=flt, limit=limit)
    ]
    for obj in objects:
        obj.pop("created_by_ref", None)  # identities are not in the bundle; MISP has its Orgc
    title = f"{settings.PHALANX['EXCHANGE_NAME']} indicators for {member.name}"
    internal = [o for o in objects if _from_misp(o)]
    external = [o for o in objects if not _from_misp(o)]
    events = []
    try:
        if internal:
            events.append(_convert(internal, internal=True, title=title))
        if external or not events:
            events.append(_convert(external, internal=False, title=title))
    except Exception as exc:  # a converter bug must not become a 500 with a trace
        logger.warning("MISP export failed: %s", type(exc).__name__)
        raise PhalanxError(
            "The intelligence could not be converted to MISP.", code="misp_conversion_failed"
        ) from None
    merged = events[0]
    for extra in events[1:]:
        merged.setdefault("Attribute", []).extend(extra.get("Attribute", []))
        merged.setdefault("Object", []).extend(extra.get("Object", []))
    return {"Event": merged}
