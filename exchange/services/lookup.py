"""Bulk lookup: which of a member's observables (from its logs, its SIEM, its mail gateway)
match intelligence the member may read, with the context to act on it.

An address also matches every indicator whose network contains it (CIDR containment): the
index is asked for the address itself and for its containing networks of the prefix lengths
that occur in the index. The answer only ever names objects the member may read; values that
match nothing the member may read are simply not in it.
"""

from __future__ import annotations

import re
import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from members.exceptions import PayloadTooLarge, PhalanxError
from members.models import Member

from .. import observables as obs
from . import suppression
from .observables import current_matches, indexed_networks, indexed_prefixes

CHUNK = 5000
MAX_INVALID_LISTED = 100


@dataclass(frozen=True)
class Match:
    id: str
    type: str
    name: str
    matched: str
    kind: str
    confidence: int | None
    tlp: str
    valid_until: datetime | None
    first_added: datetime | None
    last_added: datetime
    false_positive: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "matched": self.matched,
            "kind": self.kind,
            "confidence": self.confidence,
            "tlp": self.tlp,
            "valid_until": _iso(self.valid_until),
            "first_added": _iso(self.first_added),
            "last_added": _iso(self.last_added),
            "false_positive": self.false_positive,
        }


@dataclass(frozen=True)
class ValueResult:
    value: str
    normalised: str
    kind: str
    matches: list[Match]

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "normalised": self.normalised,
            "kind": self.kind,
            "matches": [m.as_dict() for m in self.matches],
        }


@dataclass
class LookupResult:
    checked: int = 0
    invalid: list[str] = field(default_factory=list)
    results: list[ValueResult] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return len(self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "matched": self.matched,
            "invalid": len(self.invalid),
            "invalid_values": self.invalid[:MAX_INVALID_LISTED],
            "results": [r.as_dict() for r in self.results],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# --- classification ----------------------------------------------------------------------------


def classify_fast(text: str) -> obs.Observable | None:
    """`observables.classify`, with the shapes logs are mostly made of (a dotted-quad IPv4
    address, a plain lower-case host name, a hex digest) decided without the general parsers."""
    if obs.DOTTED_QUAD.match(text):
        return obs.Observable(obs.IPV4, text)
    if len(text) in obs.HASH_LENGTHS and _LOWER_HEX.match(text):
        return obs.Observable(obs.HASH_LENGTHS[len(text)], text)
    if "/" not in text and "@" not in text and ":" not in text:
        found = obs.normalise_domain(text) if text.islower() or not text.isascii() else None
        if found is not None:
            return found
    return obs.classify(text)


_LOWER_HEX = re.compile(r"^[0-9a-f]+$")


def _ipv4_networks(address: str, prefixes: Sequence[int]) -> list[str]:
    number = int.from_bytes(socket.inet_aton(address), "big")
    found = []
    for prefix in prefixes:
        if 0 <= prefix < 32:
            network = number & ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF)
            found.append(f"{socket.inet_ntoa(network.to_bytes(4, 'big'))}/{prefix}")
    return found


def keys_for(observable: obs.Observable, prefixes: dict[str, list[int]]) -> list[str]:
    """The index values that match `observable`: itself and its containing networks."""
    keys = [observable.value]
    wanted = prefixes.get(observable.kind)
    if not wanted:
        return keys
    if observable.kind == obs.IPV4 and observable.prefix is None:
        keys.extend(_ipv4_networks(observable.value, wanted))
    else:
        keys.extend(n.value for n in obs.containing_networks(observable, wanted))
    return keys


class NetworkSet:
    """IPv4 networks held as integers per prefix length, for containment tests in memory."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.by_prefix: dict[int, set[int]] = defaultdict(set)
        for network in networks:
            address, _, prefix = network.partition("/")
            if prefix.isdigit():
                self.by_prefix[int(prefix)].add(int.from_bytes(socket.inet_aton(address), "big"))
        self.masks = {p: (0xFFFFFFFF << (32 - p)) & 0xFFFFFFFF for p in self.by_prefix}

    def containing(self, address: str) -> list[str]:
        number = int.from_bytes(socket.inet_aton(address), "big")
        found = []
        for prefix, networks in self.by_prefix.items():
            network = number & self.masks[prefix]
            if network in networks:
                found.append(f"{socket.inet_ntoa(network.to_bytes(4, 'big'))}/{prefix}")
        return found


# Above this many (address, prefix length) pairs in one lookup, the indexed IPv4 networks are
# read once and containment is decided in memory; below it, each containing network is one
# more key to look up in the index.
IN_MEMORY_NETWORKS_ABOVE = 2000
# Up to this many IPv4 addresses (and no IPv6 address or network), all 32 containing networks
# of each are probed instead of first reading which prefix lengths are indexed.
FEW_ADDRESSES = 16


# --- the lookup --------------------------------------------------------------------------------


def _add_containing_networks(
    wanted: dict[str, list[str]], addresses: list[tuple[str, str]], prefixes: list[int]
) -> None:
    """Add, for each (input, IPv4 address), the indexed networks that may contain it as keys."""
    if not addresses or not prefixes:
        return
    if len(addresses) * len(prefixes) > IN_MEMORY_NETWORKS_ABOVE:
        containing = NetworkSet(indexed_networks(obs.IPV4)).containing
    else:

        def containing(address: str) -> list[str]:
            return _ipv4_networks(address, prefixes)

    for raw, address in addresses:
        for key in containing(address):
            wanted.setdefault(key, []).append(raw)


def check_size(count: int) -> None:
    limit = int(settings.PHALANX["LOOKUP_MAX_OBSERVABLES"])
    if count > limit:
        raise PayloadTooLarge(
            f"A lookup may check at most {limit} observables.", code="too_many_observables"
        )


def lookup(*, member: Member, values: Sequence[Any]) -> LookupResult:
    """Match `values` (untyped strings) against the intelligence `member` may read now."""
    check_size(len(values))
    result = LookupResult(checked=len(values))
    if not all(isinstance(raw, str) for raw in values):
        raise PhalanxError("Each observable must be a string.", code="bad_observable")
    parsed: dict[str, obs.Observable] = {}  # input -> its observable
    wanted: dict[str, list[str]] = {}  # index key -> the inputs it answers
    addresses: list[tuple[str, str]] = []  # (input, plain IPv4 address)
    others: list[tuple[str, obs.Observable]] = []  # IPv6 addresses, and networks
    networks_of = (obs.IPV6, obs.IPV4)
    for raw in dict.fromkeys(values):  # each distinct value once, in order
        observable = classify_fast(raw.strip())
        if observable is None:
            result.invalid.append(raw)
            continue
        parsed[raw] = observable
        inputs = wanted.get(observable.value)
        if inputs is None:
            wanted[observable.value] = [raw]
        else:
            inputs.append(raw)
        if observable.kind in networks_of:
            if observable.kind == obs.IPV4 and observable.prefix is None:
                addresses.append((raw, observable.value))
            else:
                others.append((raw, observable))
    if others or len(addresses) > FEW_ADDRESSES:
        prefixes = indexed_prefixes()
    else:
        # A few IPv4 addresses: every containing network is one more key to probe, which
        # costs less than asking first which prefix lengths the index holds.
        prefixes = {obs.IPV4: list(range(32))}
    for raw, observable in others:
        for key in keys_for(observable, prefixes)[1:]:
            wanted.setdefault(key, []).append(raw)
    _add_containing_networks(wanted, addresses, prefixes.get(obs.IPV4, []))
    if not wanted:
        return result
    rows = current_matches(member, list(wanted))
    if not rows:
        return result
    suppressed = suppression.suppressed_among(member, sorted({row.stix_id for row in rows}))
    by_input: dict[str, dict[str, Match]] = {}
    for row in rows:
        match = Match(
            id=row.stix_id,
            type=row.object_type,
            name=row.name,
            matched=row.value,
            kind=row.kind,
            confidence=row.confidence,
            tlp=row.tlp,
            valid_until=row.valid_until,
            first_added=row.first_added,
            last_added=row.last_added,
            false_positive=row.stix_id in suppressed,
        )
        for raw in wanted.get(row.value, ()):
            if parsed[raw].kind == row.kind:
                by_input.setdefault(raw, {}).setdefault(match.id, match)
    for raw in sorted(by_input):
        matches = by_input[raw]
        observable = parsed[raw]
        result.results.append(
            ValueResult(
                value=raw,
                normalised=observable.value,
                kind=observable.kind,
                matches=sorted(matches.values(), key=lambda m: m.id),
            )
        )
    return result
