"""Does new intelligence touch a member's private assets?

The values of a chunk of new versions are extracted once (`exchange.observables`, the same
normalisation as the observable index) and indexed under every key a member asset could be
looked up by: each address and network under all of its enclosing networks, each domain under
all of its parent domains. A member's assets are then a handful of dictionary lookups, however
many members there are. Asset lists stay inside this module's results: the fan-out records a
match only on the alert of the member that owns the asset.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from exchange import observables as obs
from members.choices import AssetKind
from members.models import PrivateAsset

from .policy import VersionFacts

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_ASN_IN_PATTERN = re.compile(r"autonomous-system:number\s*=\s*(\d{1,10})")


def _suffixes(domain: str) -> list[str]:
    """`a.b.example.org` -> itself, `b.example.org`, `example.org` (never a bare TLD)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def _supernets(network: Network) -> list[Network]:
    return [network.supernet(new_prefix=p) for p in range(network.prefixlen)] + [network]


@dataclass
class ChunkIndex:
    """The matchable values of a chunk of versions, keyed for lookups by asset."""

    # str(network) -> versions with an address or network inside it
    inside: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    # str(network) -> versions naming exactly this network (a CIDR indicator)
    networks: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    domains: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    email_domains: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    asns: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def build(cls, versions: Iterable[VersionFacts]) -> ChunkIndex:
        index = cls()
        for version in versions:
            try:
                data = json.loads(version.body)
            except ValueError:
                continue
            if isinstance(data, dict):
                index.add(version.id, data)
        return index

    def add(self, version_id: int, data: dict[str, object]) -> None:
        for observable in obs.observables_in_object(data):
            if observable.kind in (obs.IPV4, obs.IPV6):
                self._add_ip(version_id, observable.value)
            elif observable.kind == obs.DOMAIN:
                self._add_domain(version_id, observable.value)
            elif observable.kind == obs.URL:
                self._add_host(version_id, urlsplit(observable.value).hostname or "")
            elif observable.kind == obs.EMAIL:
                for suffix in _suffixes(observable.value.rpartition("@")[2]):
                    self.email_domains[suffix].add(version_id)
        for asn in _asns_of(data):
            self.asns[asn].add(version_id)

    def _add_ip(self, version_id: int, value: str) -> None:
        network = ipaddress.ip_network(value, strict=False)
        for supernet in _supernets(network):
            self.inside[str(supernet)].add(version_id)
        self.networks[str(network)].add(version_id)

    def _add_domain(self, version_id: int, domain: str) -> None:
        for suffix in _suffixes(domain):
            self.domains[suffix].add(version_id)

    def _add_host(self, version_id: int, host: str) -> None:
        found = obs.normalise_host(host)
        if found is None:
            return
        if found.kind == obs.DOMAIN:
            self._add_domain(version_id, found.value)
        else:
            self._add_ip(version_id, found.value)

    @property
    def empty(self) -> bool:
        return not (self.inside or self.domains or self.email_domains or self.asns)


def _asns_of(data: dict[str, object]) -> set[str]:
    """AS numbers an object names: an autonomous-system SCO (or one embedded in observed-data)
    or an indicator comparing `autonomous-system:number` (the observable index has no ASNs)."""
    found: set[str] = set()
    candidates: list[object] = [data]
    embedded = data.get("objects")
    if data.get("type") == "observed-data" and isinstance(embedded, dict):
        candidates.extend(embedded.values())
    for item in candidates:
        if isinstance(item, dict) and item.get("type") == "autonomous-system":
            number = item.get("number")
            if isinstance(number, int) and not isinstance(number, bool):
                found.add(str(number))
    pattern = data.get("pattern")
    if data.get("type") == "indicator" and isinstance(pattern, str):
        found.update(str(int(n)) for n in _ASN_IN_PATTERN.findall(pattern))
    return found


@dataclass(frozen=True)
class AssetMatcher:
    """One member's asset list, prepared for lookups in a `ChunkIndex`."""

    networks: tuple[tuple[str, tuple[str, ...]], ...]  # (network, its supernets) as text
    domains: tuple[str, ...]
    email_domains: tuple[str, ...]
    asns: tuple[str, ...]

    @classmethod
    def of(cls, assets: Iterable[tuple[str, str]]) -> AssetMatcher:
        networks, domains, email_domains, asns = [], [], [], []
        for kind, value in assets:
            if kind == AssetKind.CIDR:
                network = ipaddress.ip_network(value, strict=False)
                networks.append((str(network), tuple(str(n) for n in _supernets(network))))
            elif kind == AssetKind.DOMAIN:
                domains.append(value)
            elif kind == AssetKind.EMAIL_DOMAIN:
                email_domains.append(value)
            elif kind == AssetKind.ASN:
                asns.append(value)
        return cls(tuple(networks), tuple(domains), tuple(email_domains), tuple(asns))

    def hits(self, index: ChunkIndex) -> dict[int, list[str]]:
        """version id -> the assets of this member it touches."""
        found: dict[int, set[str]] = defaultdict(set)
        for network, supernets in self.networks:
            # Addresses inside the asset, and networks that contain (or equal) the asset.
            touching = set(index.inside.get(network, ()))
            for supernet in supernets:
                touching.update(index.networks.get(supernet, ()))
            for version_id in touching:
                found[version_id].add(network)
        for table, values in (
            (index.domains, self.domains),
            (index.email_domains, self.email_domains),
            (index.asns, self.asns),
        ):
            for value in values:
                for version_id in table.get(value, ()):
                    found[version_id].add(value)
        return {version_id: sorted(values) for version_id, values in found.items()}


def load_matchers(member_ids: Iterable[int]) -> dict[int, AssetMatcher]:
    """Matchers of the members that listed any asset: one query."""
    by_member: dict[int, list[tuple[str, str]]] = defaultdict(list)
    rows = PrivateAsset.objects.filter(member_id__in=list(member_ids)).values_list(
        "member_id", "kind", "value"
    )
    for member_id, kind, value in rows:
        by_member[member_id].append((kind, value))
    return {member_id: AssetMatcher.of(assets) for member_id, assets in by_member.items()}
