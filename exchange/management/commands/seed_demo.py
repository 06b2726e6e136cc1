"""Demo data: three members in two trust groups, their tokens, a few hundred realistic
indicators, sightings and one TLP:RED object. Everything goes through the publish service.

Safe to run again: members and objects are reused (re-publishing is a no-op), and fresh tokens
are printed each time. Addresses come from the documentation ranges (RFC 5737) and domains
end in `.example`, so nothing here points at a real host.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from exchange.services.publish import publish_objects, resolve_target
from members import services as member_services
from members.models import Member, User

# Demo users share one published password; a demo is never a production deployment.
DEMO_PASSWORD = "phalanx-demo"  # noqa: S105
DEMO_NAMESPACE = uuid.UUID("8f0b7d1e-3c54-4e0e-9a57-6c1a1c0b2d11")
FINANCE_ISAC = "Finance ISAC"
MEMBERS: list[dict[str, Any]] = [
    {
        "name": "Northwind Bank",
        "sectors": ["financial-services"],
        "groups": [FINANCE_ISAC],
        "contact_email": "soc@northwind.example",
    },
    {
        "name": "Contoso Payments",
        "sectors": ["financial-services"],
        "groups": [FINANCE_ISAC],
        "contact_email": "cert@contoso.example",
    },
    {
        "name": "Fabrikam Health",
        "sectors": ["healthcare"],
        "groups": [],
        "contact_email": "security@fabrikam.example",
    },
]
TLP_AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
TLP_RED = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
CAMPAIGNS = [
    "QakBot loader wave",
    "Invoice phishing kit",
    "Cobalt Strike beacons",
    "Credential-stuffing botnet",
    "Ransomware staging servers",
]
PHASES = ["delivery", "command-and-control", "exploitation", "installation"]
CREATED = "2026-11-01T08:00:00.000Z"


def demo_id(stix_type: str, *parts: object) -> str:
    return f"{stix_type}--{uuid.uuid5(DEMO_NAMESPACE, '/'.join(map(str, parts)))}"


def _observable(rng: random.Random, index: int) -> tuple[str, str]:
    kind = index % 4
    if kind == 0:
        net = rng.choice(["198.51.100", "203.0.113", "192.0.2"])
        value = f"{net}.{rng.randint(1, 254)}"
        return f"[ipv4-addr:value = '{value}']", f"IP address {value}"
    if kind == 1:
        word = rng.choice(["login", "secure", "update", "invoice", "portal", "cdn"])
        value = f"{word}-{rng.randint(100, 999)}.{rng.choice(['bad', 'evil', 'c2'])}.example"
        return f"[domain-name:value = '{value}']", f"Domain {value}"
    if kind == 2:
        host = f"files-{rng.randint(10, 99)}.evil.example"
        value = f"https://{host}/{rng.choice(['dl', 'pay', 'doc'])}/{rng.randint(1000, 9999)}"
        return f"[url:value = '{value}']", f"URL on {host}"
    digest = hashlib.sha256(f"sample-{index}".encode()).hexdigest()
    return f"[file:hashes.'SHA-256' = '{digest}']", f"Malware sample {digest[:12]}…"


def indicators_for(member_name: str, count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311  demo data, not secrets
    objects = []
    for index in range(count):
        pattern, label = _observable(rng, index)
        campaign = rng.choice(CAMPAIGNS)
        objects.append(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": demo_id("indicator", member_name, index),
                "created": CREATED,
                "modified": CREATED,
                "name": label,
                "description": f"Seen in the {campaign} campaign.",
                "indicator_types": ["malicious-activity"],
                "pattern": pattern,
                "pattern_type": "stix",
                "valid_from": CREATED,
                "confidence": rng.choice([50, 70, 85, 95]),
                "labels": [campaign.lower().replace(" ", "-")],
                "kill_chain_phases": [
                    {
                        "kill_chain_name": "lockheed-martin-cyber-kill-chain",
                        "phase_name": rng.choice(PHASES),
                    }
                ],
            }
        )
    return objects


def sightings_of(indicator_ids: list[str], member_name: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "sighting",
            "spec_version": "2.1",
            "id": demo_id("sighting", member_name, ref),
            "created": "2026-11-02T10:00:00.000Z",
            "modified": "2026-11-02T10:00:00.000Z",
            "sighting_of_ref": ref,
            "count": 3,
            "first_seen": "2026-11-02T09:00:00Z",
            "last_seen": "2026-11-02T09:45:00Z",
        }
        for ref in indicator_ids
    ]


class Command(BaseCommand):
    help = "Seed demo members, tokens and intelligence, and print the tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--indicators", type=int, default=120, help="indicators per member (default 120)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            members = [self._member(spec) for spec in MEMBERS]
        per_member = options["indicators"]
        published = {
            m.name: indicators_for(m.name, per_member, seed) for seed, m in enumerate(members)
        }
        for member in members:
            self._publish(member, published[member.name])
        northwind, contoso, fabrikam = members
        finance_ids = [o["id"] for o in published[northwind.name][:25]]
        self._publish(contoso, sightings_of(finance_ids, contoso.name))
        self._publish(fabrikam, sightings_of(finance_ids[:10], fabrikam.name))
        self._publish_amber_and_red(northwind, contoso)
        self._print_tokens(members)

    def _member(self, spec: dict[str, Any]) -> Member:
        member = Member.objects.filter(name=spec["name"]).first()
        if member is None:
            member = member_services.create_member(
                name=spec["name"],
                sectors=spec["sectors"],
                trust_groups=spec["groups"],
                contact_email=spec["contact_email"],
            )
        username = member.name.split()[0].lower() + "-admin"
        if not User.objects.filter(username=username).exists():
            member_services.create_user(
                member=member,
                username=username,
                role="admin",
                email=spec["contact_email"],
                password=DEMO_PASSWORD,
            )
        return member

    def _publish(self, member: Member, objects: list[dict[str, Any]], **target: Any) -> None:
        result = publish_objects(
            member=member, objects=objects, target=resolve_target(member=member, **target)
        )
        rejected = [o for o in result.outcomes if o.outcome == "rejected"]
        if rejected:
            self.stderr.write(f"{member.name}: {len(rejected)} rejected, first: {rejected[0]}")

    def _publish_amber_and_red(self, northwind: Member, contoso: Member) -> None:
        amber = indicators_for(northwind.name + "/amber", 5, seed=99)
        for obj in amber:
            obj["object_marking_refs"] = [TLP_AMBER]
        self._publish(northwind, amber, trust_groups=["finance-isac"])
        red = {
            "type": "report",
            "spec_version": "2.1",
            "id": demo_id("report", "red-incident"),
            "created": CREATED,
            "modified": CREATED,
            "name": "Wire-fraud intrusion at Northwind (TLP:RED)",
            "description": "Initial access through a compromised vendor VPN account.",
            "report_types": ["incident"],
            "published": CREATED,
            "object_refs": [amber[0]["id"]],
            "object_marking_refs": [TLP_RED],
        }
        self._publish(
            northwind, [red], trust_groups=["finance-isac"], recipients=[contoso.identity_id]
        )

    def _staff_user(self) -> None:
        if not User.objects.filter(username="staff").exists():
            user = member_services.create_user(
                member=None, username="staff", is_staff=True, password=DEMO_PASSWORD
            )
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])

    def _print_tokens(self, members: list[Member]) -> None:
        """Print fresh tokens and keep them in var/demo-tokens.env for the README's examples."""
        self._staff_user()
        lines = []
        self.stdout.write("Demo members and fresh API tokens (scopes read,write,respond,admin):")
        for member in members:
            token = member_services.create_token(
                member=member, name="demo", scopes=["read", "write", "respond", "admin"]
            ).token
            variable = member.name.split()[0].upper() + "_TOKEN"
            self.stdout.write(f"  {member.name:<18} {member.identity_id}")
            self.stdout.write(f"    export {variable}={token}")
            lines.append(f"export {variable}={token}\n")
        env_file = Path(settings.VAR_DIR) / "demo-tokens.env"
        env_file.write_text("".join(lines))
        env_file.chmod(0o600)
        self.stdout.write(f"(also written to {env_file}: `source` it for the README examples)")
        self.stdout.write(
            "Users: northwind-admin, contoso-admin, fabrikam-admin (member admins) "
            "and staff (exchange staff, /admin/); password phalanx-demo"
        )
        self.stdout.write(
            f"Exchange identity for anonymous publications: {settings.PHALANX['EXCHANGE_IDENTITY']}"
        )
