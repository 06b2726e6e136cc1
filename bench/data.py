"""Deterministic STIX workloads for the publish benchmarks (S1, S2).

`indicator_bundle(n, seed=...)` builds a bundle of `n` indicators that looks like a real feed:
IPv4, IPv6, domain, URL, e-mail and file-hash patterns, some joined with AND / OR, names,
descriptions, labels, kill chain phases, external references, confidence and TLP markings,
about 600 bytes each. The same seed always gives the same bytes, so runs are comparable.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

TLP2_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
TLP2_CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
TLP2_AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"

PHASES = (
    "reconnaissance",
    "initial-access",
    "execution",
    "persistence",
    "command-and-control",
    "exfiltration",
    "lateral-movement",
    "credential-access",
    "impact",
)
LABELS = (
    "botnet",
    "c2",
    "phishing",
    "ransomware",
    "scanner",
    "stealer",
    "loader",
    "apt",
    "banking-trojan",
    "cryptominer",
)
FAMILIES = (
    "Emotet",
    "QakBot",
    "IcedID",
    "Cobalt Strike",
    "AsyncRAT",
    "RedLine",
    "LockBit",
    "Mirai",
    "AgentTesla",
    "Formbook",
)
TLDS = ("com", "net", "org", "info", "biz", "xyz", "top", "ru", "cn", "io")
WORDS = (
    "update",
    "secure",
    "login",
    "cdn",
    "mail",
    "portal",
    "cloud",
    "sync",
    "auth",
    "files",
    "verify",
    "account",
    "service",
    "api",
    "static",
    "media",
)


@dataclass(frozen=True)
class Workload:
    """A bundle and what a correct exchange must do with it."""

    document: dict[str, Any]
    valid_ids: list[str]
    invalid_indexes: list[int]

    @property
    def objects(self) -> list[dict[str, Any]]:
        return self.document["objects"]

    def body(self) -> bytes:
        return json.dumps(self.document, separators=(",", ":")).encode()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _timestamp(rng: random.Random, *, year: int = 2025, millis: bool = True) -> str:
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    base = f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    return f"{base}.{rng.randint(0, 999):03d}Z" if millis else f"{base}Z"


def _ipv4(rng: random.Random) -> str:
    octets = (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
    return ".".join(map(str, octets))


def _domain(rng: random.Random) -> str:
    parts = [rng.choice(WORDS) + str(rng.randint(1, 9999)) for _ in range(rng.randint(1, 2))]
    return ".".join(parts) + "." + rng.choice(TLDS)


def _comparison(rng: random.Random) -> tuple[str, str]:
    """One comparison expression and a short description of what it matches."""
    kind = rng.random()
    if kind < 0.35:
        value = _ipv4(rng)
        if rng.random() < 0.15:
            value += f"/{rng.choice((24, 28, 32))}"
        return f"ipv4-addr:value = '{value}'", f"address {value}"
    if kind < 0.40:
        value = f"2001:db8:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
        return f"ipv6-addr:value = '{value}'", f"address {value}"
    if kind < 0.65:
        value = _domain(rng)
        return f"domain-name:value = '{value}'", f"domain {value}"
    if kind < 0.80:
        path = "/".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        value = f"http{'s' if rng.random() < 0.6 else ''}://{_domain(rng)}/{path}"
        return f"url:value = '{value}'", f"URL {value}"
    if kind < 0.83:
        value = f"{rng.choice(WORDS)}@{_domain(rng)}"
        return f"email-addr:value = '{value}'", f"sender {value}"
    algo, size = rng.choice((("SHA-256", 64), ("MD5", 32), ("SHA-1", 40)))
    digest = f"{rng.getrandbits(size * 4):0{size}x}"
    return f"file:hashes.'{algo}' = '{digest}'", f"file {digest[:12]}"


def _pattern(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    first, what = _comparison(rng)
    if roll < 0.85:
        return f"[{first}]", what
    second, _ = _comparison(rng)
    if roll < 0.93:
        return f"[{first} OR {second}]", what
    return f"[{first}] AND [{second}]", what


def indicator(rng: random.Random, *, producer: str | None) -> dict[str, Any]:
    pattern, what = _pattern(rng)
    family = rng.choice(FAMILIES)
    created = _timestamp(rng)
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{_uuid(rng)}",
        "created": created,
        "modified": created,
        "name": f"{family} {what}",
        "indicator_types": [
            rng.choice(("malicious-activity", "anomalous-activity", "compromised", "attribution"))
        ],
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": created,
        "labels": sorted(rng.sample(LABELS, rng.randint(1, 2))),
        "confidence": rng.randint(20, 100),
        "object_marking_refs": [rng.choice((TLP2_GREEN, TLP2_GREEN, TLP2_GREEN, TLP2_CLEAR))],
    }
    if rng.random() < 0.25:
        obj["description"] = f"Seen in {family} activity by {rng.randint(1, 40)} sensors."
    if rng.random() < 0.3:
        obj["pattern_version"] = "2.1"
    if rng.random() < 0.4:
        obj["kill_chain_phases"] = [
            {"kill_chain_name": "mitre-attack", "phase_name": rng.choice(PHASES)}
        ]
    if rng.random() < 0.3:
        obj["external_references"] = [
            {"source_name": "bench-feed", "external_id": f"BF-{rng.randint(1, 10**7)}"}
        ]
    if rng.random() < 0.3:
        obj["valid_until"] = _timestamp(rng, year=2027, millis=False)
    if producer is not None:
        obj["created_by_ref"] = producer
    return obj


# Each breaks one rule the exchange must enforce; all must be reported, none stored.
def _break(rng: random.Random, obj: dict[str, Any]) -> dict[str, Any]:
    bad = dict(obj)
    kind = rng.randrange(8)
    if kind == 0:
        bad["pattern"] = "[ipv4-addr:value = '10.0.0.1'"  # unbalanced bracket
    elif kind == 1:
        bad["pattern"] = "[ipv4-addr:value === '10.0.0.1']"
    elif kind == 2:
        del bad["valid_from"]
    elif kind == 3:
        bad["id"] = "indicator--not-a-uuid"
    elif kind == 4:
        bad["spec_version"] = "2.0"
    elif kind == 5:
        bad["severity"] = "high"  # a custom property without the x_ prefix
    elif kind == 6:
        bad["modified"] = "2025-13-45T00:00:00Z"
    else:
        bad["confidence"] = 101
    return bad


def indicator_bundle(
    n: int, *, seed: int = 1, invalid_fraction: float = 0.0, producer: str | None = None
) -> Workload:
    """`n` indicators; `invalid_fraction` of them (spread evenly) broken in one way each."""
    rng = random.Random(seed)
    objects = [indicator(rng, producer=producer) for _ in range(n)]
    invalid: list[int] = []
    if invalid_fraction > 0:
        step = max(1, round(1 / invalid_fraction))
        bad_rng = random.Random(seed + 1)
        for index in range(step // 2, n, step):
            objects[index] = _break(bad_rng, objects[index])
            invalid.append(index)
    bad = set(invalid)
    valid_ids = [o["id"] for i, o in enumerate(objects) if i not in bad]
    document = {"type": "bundle", "id": f"bundle--{_uuid(rng)}", "objects": objects}
    return Workload(document=document, valid_ids=valid_ids, invalid_indexes=invalid)


def with_new_versions(workload: Workload, fraction: float, *, seed: int = 2) -> Workload:
    """The same bundle with `fraction` of its objects (spread evenly) given a later `modified`
    and a changed property: exactly those should be stored as new versions."""
    rng = random.Random(seed)
    step = max(1, round(1 / fraction))
    objects = list(workload.objects)
    changed: list[str] = []
    for index in range(0, len(objects), step):
        obj = dict(objects[index])
        obj["modified"] = _timestamp(rng, year=2026)
        obj["confidence"] = rng.randint(20, 100)
        objects[index] = obj
        changed.append(obj["id"])
    document = {"type": "bundle", "id": f"bundle--{_uuid(rng)}", "objects": objects}
    return Workload(document=document, valid_ids=changed, invalid_indexes=[])
