"""The TAXII envelope a client POSTs (section 3.7): `{"objects": [...], "more": ..., "next": ...}`.

The body is parsed by the strict parser of the validation boundary; this module checks only the
envelope's own shape. The objects inside are judged one by one by the publish service.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from members.exceptions import PayloadTooLarge, PhalanxError

ENVELOPE_PROPERTIES = frozenset({"objects", "more", "next"})


class BadEnvelope(PhalanxError):
    code = "bad_envelope"


def envelope_objects(document: Any) -> list[Any]:
    """The objects of a TAXII envelope, after checking the envelope itself."""
    if not isinstance(document, dict):
        raise BadEnvelope("The body must be a TAXII envelope: a JSON object with an objects list.")
    if document.get("type") == "bundle":
        raise BadEnvelope('TAXII 2.1 takes an envelope ({"objects": [...]}), not a STIX bundle.')
    extra = sorted(set(document) - ENVELOPE_PROPERTIES)
    if extra:
        raise BadEnvelope(f"Unexpected envelope properties: {', '.join(extra)[:200]}.")
    objects = document.get("objects")
    if not isinstance(objects, list):
        raise BadEnvelope("The envelope needs an objects list.")
    if "more" in document and not isinstance(document["more"], bool):
        raise BadEnvelope("The envelope's more must be true or false.")
    if "next" in document and not isinstance(document["next"], str):
        raise BadEnvelope("The envelope's next must be a string.")
    limit: int = settings.PHALANX["MAX_BUNDLE_OBJECTS"]
    if len(objects) > limit:
        raise PayloadTooLarge(
            f"An envelope may hold at most {limit} objects.", code="too_many_objects"
        )
    return objects
