"""Errors of the intelligence core (the validation boundary's own live in `stix.py`)."""

from members.exceptions import NotFound, PhalanxError

__all__ = ["BadRequest", "NotFound", "PhalanxError", "TargetError"]


class BadRequest(PhalanxError):
    code = "bad_request"


class TargetError(PhalanxError):
    """A publication names a trust group or recipient the publisher may not address."""

    code = "bad_target"
