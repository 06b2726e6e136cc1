from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from members import services
from members.exceptions import PhalanxError


class Command(BaseCommand):
    help = "Create a member organisation (it always joins the all-members trust group)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--sector", action="append", default=[], dest="sectors")
        parser.add_argument("--trust-group", action="append", default=[], dest="trust_groups")
        parser.add_argument("--contact-email", default="")
        parser.add_argument("--default-tlp", default="green")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            member = services.create_member(
                name=options["name"],
                sectors=options["sectors"],
                trust_groups=options["trust_groups"],
                contact_email=options["contact_email"],
                default_tlp=options["default_tlp"],
            )
        except PhalanxError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(member.identity_id)
