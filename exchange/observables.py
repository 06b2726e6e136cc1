"""Observables: normalising the values intelligence is matched on, and extracting them from
STIX indicator patterns, observed-data and cyber-observable objects.

One normalisation serves every use (the index, exports, lookup, sightings, correlation), so a
value written two ways by two members is the same value here:

- IP addresses: canonical text of `ipaddress`; an IPv4-mapped IPv6 address is its IPv4 address;
  a network keeps its prefix with the host bits cleared (`10.1.2.3/8` -> `10.0.0.0/8`), and a
  full-length prefix is the plain address (`/32`, `/128`).
- Domains: lower case, no trailing dot, internationalised names as A-labels (IDNA 2008 with
  UTS #46 mapping, IDNA 2003 as the fallback), so `Bücher.Example.` is `xn--bcher-kva.example`.
- URLs: scheme and host normalised as above, default port, fragment and empty path dropped;
  path and query kept as sent (they are case-sensitive).
- Hashes: lower-case hex, the algorithm told by the STIX key or by the length.
- E-mail addresses: lower case, the domain as above.

Pattern extraction never evaluates a pattern: it tokenises the (already validated and
length-bounded) text and reads the positive comparisons `path = 'value'`, `path IN (...)` and,
for addresses, `path ISSUBSET 'cidr'`. A match on one extracted value therefore means "this value
appears in the indicator", which is what a block list or an IDS feed wants. `LIKE` and `MATCHES`
are skipped (their regular expressions are never run), and so is every negated comparison.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

import idna

IPV4, IPV6, DOMAIN, URL, EMAIL = "ipv4", "ipv6", "domain", "url", "email"
MD5, SHA1, SHA256, SHA512 = "md5", "sha1", "sha256", "sha512"
HASH_KINDS = (MD5, SHA1, SHA256, SHA512)
KINDS = (IPV4, IPV6, DOMAIN, URL, EMAIL, *HASH_KINDS)
HASH_LENGTHS = {32: MD5, 40: SHA1, 64: SHA256, 128: SHA512}
# Longer values are not indexed: a B-tree entry has a size limit, and no appliance list holds
# such values anyway.
MAX_VALUE_LENGTH = 2048


class Observable(NamedTuple):
    """A normalised value. `prefix` is set for networks only (a CIDR shorter than the address).
    A named tuple: millions are built when an index is rebuilt."""

    kind: str
    value: str
    prefix: int | None = None

    @property
    def is_network(self) -> bool:
        return self.prefix is not None


# --- normalisation -----------------------------------------------------------------------------


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# A dotted-quad IPv4 address in canonical form (no leading zeros): already normalised.
DOTTED_QUAD = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")


def normalise_ip(text: str) -> Observable | None:
    """An address or network, or None if `text` is neither."""
    text = text.strip()
    if DOTTED_QUAD.match(text):
        return Observable(IPV4, text)
    if not text or len(text) > 64:
        return None
    if "%" in text:  # a zone index names an interface on the sender's machine, not an address
        return None
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    kind = IPV4 if network.version == 4 else IPV6
    if network.prefixlen == network.max_prefixlen:
        return Observable(kind, str(network.network_address))
    return Observable(kind, str(network), network.prefixlen)


_ASCII_NAME = re.compile(
    r"^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$"
)


def _valid_ascii_name(name: str) -> bool:
    """Two or more labels of letters, digits, hyphens (not at either end) and underscores, each
    at most 63 long, at most 253 in all, and not ending in a numeric label (that would be an
    address such as `1.2.3.4`)."""
    return (
        len(name) <= 253
        and _ASCII_NAME.match(name) is not None
        and not name.rpartition(".")[2].isdigit()
    )


def normalise_domain(text: str) -> Observable | None:
    """A host name as DNS carries it (A-labels, lower case, no trailing dot), or None."""
    name = text.strip().rstrip(".")
    if not name or len(name) > 1000:
        return None
    encoded = name.lower() if name.isascii() else _to_a_labels(name)
    if encoded is None:
        return None
    return Observable(DOMAIN, encoded) if _valid_ascii_name(encoded) else None


def _to_a_labels(name: str) -> str | None:
    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    try:  # names registered under IDNA 2003 rules (symbols, some joiners) still resolve
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def normalise_host(text: str) -> Observable | None:
    """A URL's host: an address (IPv6 in brackets) or a domain name."""
    if text.startswith("[") and text.endswith("]"):
        found = normalise_ip(text[1:-1])
        return found if found is not None and not found.is_network else None
    found = normalise_ip(text)
    if found is not None:
        return None if found.is_network else found
    return normalise_domain(text)


_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{0,15}$")


# The common shape (no user info, no IPv6 literal, printable ASCII): the same answer as the
# general path below, without `urlsplit`'s repeated parsing of the authority.
_PLAIN_URL = re.compile(
    r"^([A-Za-z][A-Za-z0-9+.-]{0,15})://([A-Za-z0-9._-]+)(?::(\d{1,5}))?([/?#][!-~]*)?$"
)


def normalise_url(text: str) -> Observable | None:
    """An absolute URL with a host, or None."""
    text = text.strip()
    if "://" not in text or len(text) > MAX_VALUE_LENGTH or any(c in text for c in "\r\n\t "):
        return None
    plain = _PLAIN_URL.match(text)
    if plain is not None and (plain.group(3) is None or int(plain.group(3)) <= 65535):
        return _plain_url(*plain.groups())
    return _general_url(text)


def _plain_url(
    scheme: str, host_text: str, port: str | None, rest: str | None
) -> Observable | None:
    scheme = scheme.lower()
    host_text = host_text.lower()
    host = (
        Observable(IPV4, host_text) if DOTTED_QUAD.match(host_text) else normalise_domain(host_text)
    )
    if host is None:
        return None
    netloc = host.value
    if port is not None and int(port) != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{int(port)}"
    path, _, query = (rest or "").partition("#")[0].partition("?")
    path = _percent_encode(path or "/")
    query = _percent_encode(query)
    return Observable(
        URL, f"{scheme}://{netloc}{path}?{query}" if query else f"{scheme}://{netloc}{path}"
    )


def _general_url(text: str) -> Observable | None:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not _SCHEME.match(scheme) or not parts.hostname:
        return None
    host = normalise_host(parts.hostname)
    if host is None:
        return None
    netloc = f"[{host.value}]" if host.kind == IPV6 else host.value
    if parts.username is not None or parts.password is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{netloc}"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    try:
        path = _percent_encode(parts.path or "/")
        query = _percent_encode(parts.query)
    except UnicodeEncodeError:  # a lone surrogate is no character of any URL
        return None
    return Observable(URL, urlunsplit((scheme, netloc, path, query, "")))


def _percent_encode(text: str) -> str:
    """Percent-encode what a browser would (non-ASCII as UTF-8, controls), leave every printable
    ASCII character as sent, and write existing escapes in upper case (RFC 3986, 6.2.2.1)."""
    if not (text.isascii() and text.isprintable()):
        text = quote(text, safe="".join(chr(c) for c in range(0x21, 0x7F)))
    if "%" not in text:
        return text
    return _ESCAPE.sub(lambda m: m.group(0).upper(), text)


_ESCAPE = re.compile(r"%[0-9a-f][0-9A-Fa-f]|%[0-9A-F][a-f]")


_HEX = re.compile(r"^[0-9a-fA-F]+$")


def normalise_hash(text: str, algorithm: str | None = None) -> Observable | None:
    """A hex digest. With `algorithm` (a STIX hash key such as 'SHA-256'), the length must agree."""
    value = text.strip().lower()
    kind = HASH_LENGTHS.get(len(value))
    if kind is None or not _HEX.match(value):
        return None
    if algorithm is not None and hash_kind_of_key(algorithm) != kind:
        return None
    return Observable(kind, value)


@functools.lru_cache(maxsize=256)
def hash_kind_of_key(key: str) -> str | None:
    """'SHA-256', 'SHA256', 'sha256' -> sha256; other algorithms (SSDEEP, TLSH...) -> None."""
    compact = key.strip().strip("'\"").replace("-", "").replace("_", "").lower()
    return {"md5": MD5, "sha1": SHA1, "sha256": SHA256, "sha512": SHA512}.get(compact)


_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")


def normalise_email(text: str) -> Observable | None:
    local, at, domain = text.strip().rpartition("@")
    if not at or not _EMAIL_LOCAL.match(local):
        return None
    host = normalise_domain(domain)
    if host is None:
        return None
    return Observable(EMAIL, f"{local.lower()}@{host.value}")


_NORMALISERS = {
    IPV4: normalise_ip,
    IPV6: normalise_ip,
    DOMAIN: normalise_domain,
    URL: normalise_url,
    EMAIL: normalise_email,
    MD5: normalise_hash,
    SHA1: normalise_hash,
    SHA256: normalise_hash,
    SHA512: normalise_hash,
}


def normalise(kind: str, text: str) -> Observable | None:
    """`text` as an observable of `kind`, or None when it is not one."""
    normaliser = _NORMALISERS.get(kind)
    found = normaliser(text) if normaliser is not None and isinstance(text, str) else None
    return found if found is not None and found.kind == kind else None


def classify(text: str) -> Observable | None:
    """Recognise an untyped value from a member's logs: address or network, URL, e-mail
    address, hash or domain, in that order. None for anything else."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > MAX_VALUE_LENGTH:
        return None
    if "://" in text:
        return normalise_url(text)
    if "@" in text:
        return normalise_email(text)
    if ":" in text or "/" in text or text[-1:].isdigit():
        found = normalise_ip(text)
        if found is not None:
            return found
    if len(text) in HASH_LENGTHS and _HEX.match(text):
        return normalise_hash(text)
    return normalise_domain(text)


def containing_networks(address: Observable, prefixes: Iterable[int]) -> list[Observable]:
    """The networks of the given prefix lengths that contain `address` (an IP observable):
    the keys under which a CIDR indicator covering the address is indexed."""
    if address.kind not in (IPV4, IPV6):
        return []
    ip = ipaddress.ip_address(address.value.split("/", 1)[0])
    top = address.prefix if address.prefix is not None else ip.max_prefixlen
    found = []
    for prefix in sorted(set(prefixes)):
        if 0 <= prefix < top:
            network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
            found.append(Observable(address.kind, str(network), prefix))
    return found


# --- STIX patterns -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>[bh]?'(?:[^'\\]|\\.)*')
      | (?P<path>[a-z0-9][a-z0-9-]*:(?:[A-Za-z0-9_-]+|'[^']*')
              (?:\.(?:[A-Za-z0-9_-]+|'[^']*')|\[(?:\d+|\*)\])*)
      | (?P<op>!=|<=|>=|=|<|>)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<other>.)
    )""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(pattern: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(pattern):
        kind = match.lastgroup
        if kind is not None:
            tokens.append(_Token(kind, match.group(kind)))
    return tokens


def _unquote(literal: str) -> str | None:
    """The value of a plain STIX string literal; None for binary and hex literals."""
    if not literal.startswith("'"):
        return None
    return re.sub(r"\\(.)", r"\1", literal[1:-1], flags=re.DOTALL)


# Object paths whose string value is an observable, and the kind it is (None: tell by value).
_VALUE_PATHS: dict[str, str | None] = {
    "ipv4-addr:value": IPV4,
    "ipv6-addr:value": IPV6,
    "domain-name:value": DOMAIN,
    "url:value": URL,
    "email-addr:value": EMAIL,
    "email-message:from_ref.value": EMAIL,
    "email-message:sender_ref.value": EMAIL,
    "email-message:to_refs[*].value": EMAIL,
    "email-message:cc_refs[*].value": EMAIL,
    "network-traffic:dst_ref.value": None,
    "network-traffic:src_ref.value": None,
    "domain-name:resolves_to_refs[*].value": None,
    "ipv4-addr:resolves_to_refs[*].value": None,
}
_HASH_PATH = re.compile(
    r"^(?:file|artifact|x509-certificate):(?:hashes|extensions\.'[^']*'\.hashes)"
    r"\.(?P<key>'[^']*'|[A-Za-z0-9_-]+)$"
)


def observable_for_path(path: str, value: str) -> Observable | None:
    """The observable a comparison `path = value` names, if the path is one we index."""
    normalised_path = re.sub(r"\[\d+\]", "[*]", path) if "[" in path else path
    if normalised_path in _VALUE_PATHS:
        kind = _VALUE_PATHS[normalised_path]
        if kind is None:
            found = classify(value)
            return found if found is not None and found.kind in (IPV4, IPV6, DOMAIN) else None
        return normalise(kind, value)
    hashed = _HASH_PATH.match(path)
    if hashed is not None:
        return normalise_hash(value, hashed.group("key"))
    return None


# The shape most indicators have, `[path = 'value']`, read with one match instead of the
# tokeniser (the answer is the same; the test suite checks both on the same inputs).
_SINGLE = re.compile(
    r"^\[\s*(?P<path>[a-z0-9][a-z0-9-]*:[A-Za-z0-9_.'-]+)\s*=\s*'(?P<value>[^'\\]*)'\s*\]$"
)


def observables_in_pattern(pattern: str) -> list[Observable]:
    """Every observable a positive comparison of a STIX pattern names, deduplicated, in order."""
    if not isinstance(pattern, str):
        return []
    single = _SINGLE.match(pattern)
    if single is not None:
        found_one = observable_for_path(single.group("path"), single.group("value"))
        return [found_one] if found_one is not None else []
    return _observables_by_tokens(pattern)


def _observables_by_tokens(pattern: str) -> list[Observable]:
    tokens = _tokens(pattern)
    found: dict[Observable, None] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token.kind != "path":
            continue
        negated = i < len(tokens) and tokens[i].kind == "word" and tokens[i].text == "NOT"
        if negated:
            i += 1
        if i >= len(tokens):
            break
        operator = tokens[i]
        if operator.kind == "op" and operator.text == "=" and i + 1 < len(tokens):
            values = [tokens[i + 1]]
        elif operator.kind == "word" and operator.text == "IN":
            values = _set_members(tokens, i + 1)
        elif operator.kind == "word" and operator.text == "ISSUBSET" and i + 1 < len(tokens):
            values = [tokens[i + 1]]
            if not token.text.endswith("-addr:value"):
                values = []
        else:
            continue
        if negated:
            continue
        for literal in values:
            text = _unquote(literal.text) if literal.kind == "string" else None
            observable = observable_for_path(token.text, text) if text is not None else None
            if observable is not None:
                found.setdefault(observable)
    return list(found)


def _set_members(tokens: list[_Token], start: int) -> list[_Token]:
    """The string literals of `( 'a', 'b' )` starting at `start`."""
    if start >= len(tokens) or tokens[start].text != "(":
        return []
    members = []
    for token in tokens[start + 1 :]:
        if token.text == ")":
            break
        if token.kind == "string":
            members.append(token)
        elif token.text != ",":
            return []
    return members


# --- objects -----------------------------------------------------------------------------------

# SCO type -> (property, kind; None: tell by value)
_SCO_VALUES: dict[str, str | None] = {
    "ipv4-addr": IPV4,
    "ipv6-addr": IPV6,
    "domain-name": DOMAIN,
    "url": URL,
    "email-addr": EMAIL,
}


def observables_in_sco(sco: dict[str, Any]) -> Iterator[Observable]:
    """The observables one cyber-observable object carries (its value, or its hashes)."""
    sco_type = sco.get("type")
    if not isinstance(sco_type, str):
        return
    if sco_type in _SCO_VALUES:
        value = sco.get("value")
        if isinstance(value, str):
            kind = _SCO_VALUES[sco_type]
            found = normalise(kind, value) if kind is not None else classify(value)
            if found is not None:
                yield found
    hashes = sco.get("hashes")
    if sco_type in ("file", "artifact", "x509-certificate") and isinstance(hashes, dict):
        for key, digest in hashes.items():
            if isinstance(key, str) and isinstance(digest, str):
                found = normalise_hash(digest, key)
                if found is not None:
                    yield found


# Object types whose observables are indexed.
INDEXED_TYPES = ("indicator", "observed-data", *_SCO_VALUES, "file", "artifact")


def observables_in_indicator(pattern_type: Any, pattern: Any) -> list[Observable]:
    """The observables of an indicator with this pattern (STIX patterns only)."""
    if pattern_type != "stix" or not isinstance(pattern, str):
        return []
    return [o for o in observables_in_pattern(pattern) if len(o.value) <= MAX_VALUE_LENGTH]


def observables_in_object(data: dict[str, Any]) -> list[Observable]:
    """The observables of one stored STIX object: an indicator's STIX pattern, the objects
    embedded in observed-data (the deprecated `objects` property), or an SCO itself.
    Observed-data that only points at SCOs (`object_refs`) is indexed through those SCOs."""
    stix_type = data.get("type")
    found: dict[Observable, None] = {}
    if stix_type == "indicator":
        return observables_in_indicator(data.get("pattern_type"), data.get("pattern"))
    if stix_type == "observed-data":
        embedded = data.get("objects")
        if isinstance(embedded, dict):
            for sco in embedded.values():
                if isinstance(sco, dict):
                    found.update(dict.fromkeys(observables_in_sco(sco)))
    else:
        found.update(dict.fromkeys(observables_in_sco(data)))
    return [o for o in found if len(o.value) <= MAX_VALUE_LENGTH]
