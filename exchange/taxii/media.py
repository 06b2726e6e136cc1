"""Media types and content negotiation (TAXII 2.1 section 1.6.8).

TAXII 2.1 resources are `application/taxii+json;version=2.1`; `application/taxii+json` without a
version asks for the newest version the server speaks, which is 2.1 here. The objects carried in
envelopes are STIX 2.1 (`application/stix+json;version=2.1` in manifests and collections).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from members.exceptions import UnsupportedMediaType

from .errors import NotAcceptable

TAXII_TYPE = "application/taxii+json"
TAXII_VERSION = "2.1"
TAXII_MEDIA_TYPE = f"{TAXII_TYPE};version={TAXII_VERSION}"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header (or the whole of a Content-Type)."""

    main: str
    sub: str
    params: dict[str, str] = field(default_factory=dict)
    quality: float = 1.0


def parse_media_type(text: str) -> MediaRange | None:
    """`type/subtype; name=value; q=0.5` -> MediaRange, or None when it is not of that shape."""
    head, *raw_params = text.split(";")
    main, slash, sub = head.strip().lower().partition("/")
    if not slash or not main or not sub:
        return None
    params: dict[str, str] = {}
    quality = 1.0
    for raw in raw_params:
        name, equals, value = raw.strip().partition("=")
        if not equals:
            continue
        name, value = name.strip().lower(), value.strip().strip('"')
        if name == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0  # an unreadable weight is no consent
        else:
            params[name] = value
    return MediaRange(main, sub, params, quality)


def _specificity(candidate: MediaRange) -> int | None:
    """How specifically `candidate` names TAXII 2.1 (higher is more specific); None if not."""
    if candidate.main == "*" and candidate.sub == "*":
        return 0
    if candidate.main != "application":
        return None
    if candidate.sub == "*":
        return 1
    if candidate.sub != "taxii+json":
        return None
    version = candidate.params.get("version")
    if version is None:
        return 2
    return 3 if version == TAXII_VERSION else None


def accepts_taxii(header: str | None) -> bool:
    """Whether an Accept header admits TAXII 2.1. No header admits anything (RFC 9110 12.5.1);
    the most specific range that matches decides, so `*/*, application/taxii+json;q=0` refuses."""
    if header is None or not header.strip():
        return True
    best: tuple[int, float] | None = None
    for part in header.split(","):
        candidate = parse_media_type(part)
        if candidate is None:
            continue
        rank = _specificity(candidate)
        if rank is not None and (best is None or rank > best[0]):
            best = (rank, candidate.quality)
    return best is not None and best[1] > 0


def require_acceptable(header: str | None) -> None:
    if not accepts_taxii(header):
        shown = (header or "")[:200]
        raise NotAcceptable(f"This server answers only {TAXII_MEDIA_TYPE} (got Accept: {shown}).")


def require_taxii_content_type(header: str | None) -> None:
    """A request body must be a TAXII 2.1 envelope; anything else is 415."""
    candidate = parse_media_type(header or "")
    if (
        candidate is None
        or (candidate.main, candidate.sub) != ("application", "taxii+json")
        or candidate.params.get("version", TAXII_VERSION) != TAXII_VERSION
    ):
        raise UnsupportedMediaType(
            f"Send the envelope as {TAXII_MEDIA_TYPE} (got {(header or 'nothing')[:200]})."
        )
