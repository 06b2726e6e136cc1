"""The JSON parser of every DRF view that reads `request.data` (users, tokens, webhooks,
assets, notification policy...): the exchange's strict parser instead of `json.loads`, so those
bodies get the same rules as bundles: a size cap, a depth limit, no duplicate keys, no NaN or
Infinity, no integers beyond 20 digits, no NUL or lone surrogates (a 400 or 413 with a clear
code instead of a silent "last key wins" or a crash deep in the stack)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.parsers import JSONParser

from exchange import stix

from .body import read_capped_body

# Settings bodies are small; a megabyte is generous and keeps a hostile one cheap.
SMALL_BODY_MAX = 1024 * 1024


class StrictJSONParser(JSONParser):
    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        request = (parser_context or {})["request"]
        return stix.parse_json(read_capped_body(request._request, SMALL_BODY_MAX))
