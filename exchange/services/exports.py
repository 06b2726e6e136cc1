"""Exports of what a member may act on, in the formats its tools already read.

Every export is built from `current_observables` (itself built on `visible_to`): indicators
the member may read, not revoked, not expired, only the newest version the member may read of
each, and none that false-positive reports suppress for the member. Each format is a
generator of text chunks, so the API and the `export` command stream it.

IDS rules carry stable SIDs: `SID_BASE + 4 * key + variant`, where `key` is fixed for an
(indicator, value) pair when it is first indexed and inherited by later versions, and
`variant` tells the rules of one value apart (DNS, TLS SNI, HTTP host). Phalanx SIDs therefore
lie in [1,400,000,000, 2,147,483,647], clear of the Snort/Talos (< 1,000,000), local-use
(1,000,000-1,999,999) and Emerging Threats (2,000,000-2,999,999 and 2,800,000+) ranges and
within a signed 32-bit integer for tools that read SIDs that way. `rev` is the version's
`modified` time in seconds since 2020-01-01, so a new version of an indicator raises it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from members.choices import Tlp
from members.exceptions import PhalanxError
from members.models import Member, TrustGroup

from .. import observables as obs
from ..models import Observable, StixObject
from ..querysets import audience_reach
from . import suppression
from .observables import current_observables

FORMAT_VERSION = "1"
SID_BASE = 1_400_000_000
SID_MAX = 2_147_483_647
REV_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
ITER_CHUNK = 5000

# Plain lists: file name -> the kinds it holds.
TEXT_LISTS: dict[str, tuple[str, ...]] = {
    "ipv4": (obs.IPV4,),
    "ipv6": (obs.IPV6,),
    "ip": (obs.IPV4, obs.IPV6),
    "domains": (obs.DOMAIN,),
    "urls": (obs.URL,),
    "emails": (obs.EMAIL,),
    "md5": (obs.MD5,),
    "sha1": (obs.SHA1,),
    "sha256": (obs.SHA256,),
    "sha512": (obs.SHA512,),
    "hashes": obs.HASH_KINDS,
}
FORMATS = ("csv", "suricata", "snort", "stix")


class ExportError(PhalanxError):
    code = "bad_export_filter"


@dataclass(frozen=True)
class ExportFilter:
    """What a member narrows an export to. Every field comes from a whitelist."""

    trust_group: TrustGroup | None = None
    kinds: tuple[str, ...] = ()
    tlp: tuple[str, ...] = ()
    min_confidence: int | None = None
    max_age_days: int | None = None

    def key(self) -> str:
        return json.dumps(
            [
                self.trust_group.pk if self.trust_group else None,
                sorted(self.kinds),
                sorted(self.tlp),
                self.min_confidence,
                self.max_age_days,
            ]
        )


FILTER_PARAMS = ("trust_group", "kind", "tlp", "min_confidence", "max_age_days")


def parse_filter(*, member: Member, params: dict[str, list[str]]) -> ExportFilter:
    """Build a filter from query parameters; anything outside the whitelists is a 400."""
    unknown = sorted(set(params) - set(FILTER_PARAMS))
    if unknown:
        raise ExportError(
            f"Unknown parameter(s): {', '.join(unknown)}. Known: {', '.join(FILTER_PARAMS)}.",
            code="unknown_parameter",
        )
    values = {
        name: [v.strip() for raw in params.get(name, []) for v in raw.split(",") if v.strip()]
        for name in FILTER_PARAMS
    }
    group = None
    if values["trust_group"]:
        if len(values["trust_group"]) > 1:
            raise ExportError("Give one trust_group.")
        group = _member_group(member, values["trust_group"][0])
    kinds = tuple(sorted(set(values["kind"])))
    bad = [k for k in kinds if k not in obs.KINDS]
    if bad:
        raise ExportError(f"Unknown kind {bad[0]!r}; known: {', '.join(obs.KINDS)}.")
    tlp = tuple(sorted({t.lower().removeprefix("tlp:") for t in values["tlp"]}))
    bad = [t for t in tlp if t not in Tlp.values]
    if bad:
        raise ExportError(f"Unknown TLP {bad[0]!r}; known: {', '.join(Tlp.values)}.")
    return ExportFilter(
        trust_group=group,
        kinds=kinds,
        tlp=tlp,
        min_confidence=_bounded_int(values["min_confidence"], "min_confidence", 0, 100),
        max_age_days=_bounded_int(values["max_age_days"], "max_age_days", 1, 36500),
    )


def _bounded_int(raw: list[str], name: str, low: int, high: int) -> int | None:
    if not raw:
        return None
    if len(raw) > 1 or not raw[0].isdigit() or not low <= int(raw[0]) <= high:
        raise ExportError(f"{name} must be one integer from {low} to {high}.")
    return int(raw[0])


def _member_group(member: Member, ref: str) -> TrustGroup:
    """A group the member is in, by slug or collection id; any other reads as unknown."""
    groups = TrustGroup.objects.filter(memberships__member=member)
    # A NUL names no group, and Postgres refuses it as a query parameter.
    group = groups.filter(slug=ref).first() if "\x00" not in ref else None
    if group is None:
        try:
            group = groups.filter(collection_id=uuid.UUID(ref)).first()
        except ValueError:
            group = None
    if group is None:
        raise ExportError(f"Unknown trust group {ref!r}.", code="unknown_trust_group")
    return group


# --- the rows ----------------------------------------------------------------------------------


def _versions(member: Member, flt: ExportFilter, now: datetime) -> Any:
    versions = StixObject.objects.visible_to(member).filter(type="indicator")
    if flt.trust_group is not None:
        # Shared with the whole group (see `triage.queue` on publications to named recipients).
        through_group = audience_reach(
            member=member, group_id=flt.trust_group.pk, named=False, only_audience_ids=True
        )
        versions = versions.filter(audience_id__in=through_group)
    if flt.tlp:
        versions = versions.filter(tlp__in=flt.tlp)
    if flt.min_confidence is not None:
        versions = versions.filter(confidence__gte=flt.min_confidence)
    if flt.max_age_days is not None:
        versions = versions.filter(date_added__gte=now - timedelta(days=flt.max_age_days))
    return versions


def export_observables(
    *, member: Member, flt: ExportFilter, kinds: Iterable[str] = (), now: datetime | None = None
) -> QuerySet[Observable]:
    """The index rows an export of `member` holds (indicators only, suppressed ones left out)."""
    now = now or timezone.now()
    rows = (
        current_observables(member, versions=_versions(member, flt, now), now=now)
        .filter(object_type="indicator")
        .exclude(stix_id__in=suppression.suppressed_ids(member))
    )
    wanted = set(flt.kinds)
    if kinds:
        wanted = (wanted & set(kinds)) if wanted else set(kinds)
        if not wanted:
            return rows.none()
    if wanted:
        rows = rows.filter(kind__in=sorted(wanted))
    return rows


# A validator is good for at most this long. Within it, what changes an export is seen at
# once: a new version (revocations included), an expiry, a false-positive report. What it does
# not see, a producer deleting an object, a trust-group membership change or an age window
# moving on, is seen when the period turns.
VALIDATOR_PERIOD_SECONDS = 3600


def validator(
    *, member: Member, export: str, flt: ExportFilter, now: datetime | None = None
) -> str:
    """An ETag for an export, from three small reads: the newest indicator version the member
    may read (a backward walk of the primary key that stops at the first visible row), the
    next expiry among the index rows the member may read, and the false-positive reports;
    plus the member's trust groups, the filters and the current validity period. Only rows
    the member may see go into it, and it is a digest: it tells nothing about anything else."""
    now = now or timezone.now()
    visible = StixObject.objects.visible_to(member).filter(type="indicator")
    last = visible.order_by("-id").values_list("id", flat=True).first()
    next_expiry = (
        Observable.objects.filter(version__in=visible, valid_until__gt=now)
        .order_by("valid_until")
        .values_list("valid_until", flat=True)
        .first()
    )
    # Leaving a trust group can end access to rows older than the newest visible one.
    groups = member.memberships.order_by("group_id").values_list("group_id", flat=True)
    parts = [
        FORMAT_VERSION,
        str(member.pk),
        ",".join(map(str, groups)),
        export,
        flt.key(),
        str(last),
        next_expiry.isoformat() if next_expiry else "-",
        str(suppression.suppression_version()),
        str(suppression.threshold()),
        str(int(now.timestamp()) // VALIDATOR_PERIOD_SECONDS),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


# --- formats -----------------------------------------------------------------------------------


def text_list(*, member: Member, flt: ExportFilter, kinds: tuple[str, ...]) -> Iterator[str]:
    """One value per line, sorted and without repeats: what firewalls fetch as an external
    dynamic list (addresses and networks, domains, URLs, hashes)."""
    values = (
        export_observables(member=member, flt=flt, kinds=kinds)
        .order_by("value")
        .values_list("value", flat=True)
        .distinct()
    )
    batch: list[str] = []
    for value in values.iterator(chunk_size=ITER_CHUNK):
        batch.append(value)
        if len(batch) >= ITER_CHUNK:
            yield "\n".join(batch) + "\n"
            batch = []
    if batch:
        yield "\n".join(batch) + "\n"


CSV_COLUMNS = (
    "value",
    "kind",
    "indicator_id",
    "name",
    "confidence",
    "tlp",
    "valid_until",
    "modified",
    "last_added",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""


def csv_rows(*, member: Member, flt: ExportFilter) -> Iterator[str]:
    rows = (
        export_observables(member=member, flt=flt)
        .order_by("stix_id", "kind", "value")
        .values_list(
            "value",
            "kind",
            "stix_id",
            "name",
            "version__confidence",
            "version__tlp",
            "valid_until",
            "modified",
            "version__date_added",
        )
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for count, (
        value,
        kind,
        stix_id,
        name,
        confidence,
        tlp,
        valid_until,
        modified,
        added,
    ) in enumerate(rows.iterator(chunk_size=ITER_CHUNK), start=1):
        writer.writerow(
            [
                value,
                kind,
                stix_id,
                _cell(name),
                "" if confidence is None else confidence,
                tlp,
                _iso(valid_until),
                _iso(modified),
                _iso(added),
            ]
        )
        if count % ITER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- IDS rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSource:
    key: int
    stix_id: str
    kind: str
    value: str
    name: str
    tlp: str
    confidence: int | None
    modified: datetime


def sid_for(key: int, variant: int) -> int | None:
    sid = SID_BASE + 4 * key + variant
    return sid if sid <= SID_MAX else None


def rev_for(modified: datetime) -> int:
    return max(1, int((modified - REV_EPOCH).total_seconds()))


_MSG_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._:/-+()[]#")


def rule_message(text: str, limit: int = 120) -> str:
    """Text for a rule's `msg`: anything outside a plain alphabet becomes a space, so no name
    can end the option, add one, or break the line."""
    cleaned = "".join(c if c in _MSG_SAFE else " " for c in text[:limit])
    return " ".join(cleaned.split())


def rule_content(text: str) -> str:
    """A `content` string: printable ASCII as is, except the characters the rule grammar
    reserves, which go as |hex| bytes like everything else."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if 0x20 <= byte < 0x7F and char not in '";\\|:':
            out.append(char)
        else:
            out.append(f"|{byte:02X}|")
    return "".join(out)


def dns_wire_name(domain: str) -> str:
    """A domain as DNS carries it in a query (length-prefixed labels), as Snort content."""
    parts = []
    for label in domain.split("."):
        parts.append(f"|{len(label):02X}|{rule_content(label)}")
    return "".join(parts) + "|00|"


def _meta(source: RuleSource) -> str:
    confidence = "none" if source.confidence is None else str(source.confidence)
    return (
        f"metadata:phalanx_id {source.stix_id}, tlp {source.tlp.replace('+', '_')}, "
        f"confidence {confidence}"
    )


def _options(source: RuleSource, variant: int, body: str, label: str) -> str | None:
    sid = sid_for(source.key, variant)
    if sid is None:
        return None
    name = rule_message(source.name) or source.stix_id
    msg = rule_message(f"PHALANX {label} {source.value if source.kind != obs.URL else ''} {name}")
    return (
        f'(msg:"{msg}"; {body}classtype:trojan-activity; {_meta(source)}; '
        f"sid:{sid}; rev:{rev_for(source.modified)};)"
    )


def suricata_rules_for(source: RuleSource) -> list[str]:
    """Suricata 7 rules for one value (addresses, domains, URLs; hashes and e-mail addresses
    need file or SMTP lists and are left out)."""
    rules: list[tuple[str, str | None]] = []
    if source.kind in (obs.IPV4, obs.IPV6):
        rules.append(
            (f"alert ip $HOME_NET any <> [{source.value}] any ", _options(source, 0, "", "address"))
        )
    elif source.kind == obs.DOMAIN:
        content = rule_content(source.value)
        size = len(source.value)
        rules.append(
            (
                "alert dns $HOME_NET any -> any any ",
                _options(
                    source,
                    0,
                    f'dns.query; content:"{content}"; nocase; bsize:{size}; ',
                    "DNS query",
                ),
            )
        )
        rules.append(
            (
                "alert tls $HOME_NET any -> any any ",
                _options(
                    source, 1, f'tls.sni; content:"{content}"; nocase; bsize:{size}; ', "TLS SNI"
                ),
            )
        )
        rules.append(
            (
                "alert http $HOME_NET any -> any any ",
                _options(source, 2, f'http.host; content:"{content}"; bsize:{size}; ', "HTTP host"),
            )
        )
    elif source.kind == obs.URL:
        host, path = _host_and_path(source.value)
        body = (
            f'flow:established,to_server; http.host; content:"{rule_content(host)}"; '
            f'bsize:{len(host)}; http.uri.raw; content:"{rule_content(path)}"; '
            f"bsize:{len(path.encode())}; "
        )
        rules.append(("alert http $HOME_NET any -> any any ", _options(source, 0, body, "URL")))
    return [head + opts for head, opts in rules if opts is not None]


def snort_rules_for(source: RuleSource) -> list[str]:
    """Snort 2.9 rules for one value; the same SIDs as the Suricata rules of the same value."""
    rules: list[tuple[str, str | None]] = []
    if source.kind in (obs.IPV4, obs.IPV6):
        rules.append(
            (f"alert ip $HOME_NET any <> [{source.value}] any ", _options(source, 0, "", "address"))
        )
    elif source.kind == obs.DOMAIN:
        rules.append(
            (
                "alert udp $HOME_NET any -> any 53 ",
                _options(
                    source, 0, f'content:"{dns_wire_name(source.value)}"; nocase; ', "DNS query"
                ),
            )
        )
        rules.append(
            (
                "alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS ",
                _options(
                    source,
                    2,
                    f'flow:established,to_server; content:"Host|3A| '
                    f'{rule_content(source.value)}"; http_header; nocase; ',
                    "HTTP host",
                ),
            )
        )
    elif source.kind == obs.URL:
        host, path = _host_and_path(source.value)
        body = (
            f'flow:established,to_server; content:"{rule_content(path)}"; http_raw_uri; '
            f'content:"Host|3A| {rule_content(host)}"; http_header; nocase; '
        )
        rules.append(
            (
                "alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS ",
                _options(source, 0, body, "URL"),
            )
        )
    return [head + opts for head, opts in rules if opts is not None]


def _host_and_path(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    slash = rest.find("/")
    netloc, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host = netloc.rpartition("@")[2]
    host = host[: host.index("]") + 1] if host.startswith("[") else host.split(":", 1)[0]
    return host, path


RULE_KINDS = (obs.IPV4, obs.IPV6, obs.DOMAIN, obs.URL)


def rules(*, member: Member, flt: ExportFilter, dialect: str) -> Iterator[str]:
    """Suricata (`dialect="suricata"`) or Snort 2.9 (`"snort"`) rules, ordered by SID."""
    build = suricata_rules_for if dialect == "suricata" else snort_rules_for
    rows = (
        export_observables(member=member, flt=flt, kinds=RULE_KINDS)
        .order_by("id")
        .values_list(
            "id",
            "sid_key",
            "stix_id",
            "kind",
            "value",
            "name",
            "version__tlp",
            "version__confidence",
            "modified",
        )
    )
    yield (
        f"# Phalanx {dialect} rules for member {member.name!r}, generated "
        f"{_iso(timezone.now())}. SIDs {SID_BASE}-{SID_MAX} are Phalanx's.\n"
    )
    lines: list[str] = []
    for row_id, sid_key, stix_id, kind, value, name, tlp, confidence, modified in rows.iterator(
        chunk_size=ITER_CHUNK
    ):
        source = RuleSource(
            sid_key or row_id, stix_id, kind, value, name, tlp, confidence, modified
        )
        lines.extend(build(source))
        if len(lines) >= ITER_CHUNK:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


# --- STIX --------------------------------------------------------------------------------------


def current_indicator_bodies(
    *, member: Member, flt: ExportFilter, limit: int | None = None
) -> Iterator[str]:
    """The stored JSON of each current indicator in the export, oldest first."""
    version_ids = export_observables(member=member, flt=flt).values("version_id")
    bodies = (
        StixObject.objects.filter(pk__in=version_ids)
        .order_by("date_added", "id")
        .values_list("body", flat=True)
    )
    if limit is not None:
        bodies = bodies[:limit]
    yield from bodies.iterator(chunk_size=ITER_CHUNK)


def stix_bundle(*, member: Member, flt: ExportFilter, bundle_id: str) -> Iterator[str]:
    """A STIX 2.1 bundle of the current indicators, streamed from their stored JSON."""
    yield f'{{"type":"bundle","id":"{bundle_id}","objects":['
    first = True
    batch: list[str] = []
    for body in current_indicator_bodies(member=member, flt=flt):
        batch.append(body)
        if len(batch) >= ITER_CHUNK:
            yield ("" if first else ",") + ",".join(batch)
            first = False
            batch = []
    if batch:
        yield ("" if first else ",") + ",".join(batch)
    yield "]}"


def bundle_id_for(etag: str) -> str:
    """The same content gets the same bundle id."""
    return f"bundle--{uuid.uuid5(uuid.NAMESPACE_URL, 'phalanx-export:' + etag)}"
