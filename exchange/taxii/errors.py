"""Errors only TAXII raises. Everything else a TAXII request can fail with is already a
`PhalanxError` (not found, too large, bad media type, bad STIX...) and is rendered the same way:
as the TAXII error resource (section 3.6.1), see `responses.error_response`."""

from __future__ import annotations

from members.exceptions import PhalanxError


class NotAuthenticated(PhalanxError):
    status_code = 401
    code = "not_authenticated"


class NotAcceptable(PhalanxError):
    status_code = 406
    code = "not_acceptable"


class MethodNotAllowed(PhalanxError):
    status_code = 405
    code = "method_not_allowed"


# Titles of the error resource, by HTTP status (title is the one required property).
TITLES: dict[int, str] = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
}
