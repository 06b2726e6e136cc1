from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from members import services
from members.exceptions import PhalanxError
from members.models import Member


class Command(BaseCommand):
    help = "Create an API token for a member and print only the token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("member_name")
        parser.add_argument("--scopes", default="read", help="comma list: read,write,respond,admin")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        member = Member.objects.filter(name__iexact=options["member_name"]).first()
        if member is None:
            raise CommandError(f"No member named {options['member_name']!r}.")
        expires = (
            timezone.now() + timedelta(days=options["expires_days"])
            if options["expires_days"]
            else None
        )
        try:
            issued = services.create_token(
                member=member,
                name=options["name"],
                scopes=options["scopes"].split(","),
                expires_at=expires,
            )
        except PhalanxError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(issued.token)
