"""Exchange staff act on activations from scripts: the same services as the staff API.

manage.py activation list [--state active]
manage.py activation confirm|contain|stand_down <activation id> --user <staff username>
manage.py activation cancel <activation id> --user <staff username> [--reason "..."]
manage.py activation drill --user <staff username> --title "..." [--severity high]
    [--group slug ...] [--value 203.0.113.9 ...]
manage.py activation escalate      (run one escalation pass now, as beat does)
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from members.exceptions import PhalanxError
from members.models import User

from ...response import escalation, lifecycle, reports
from ...response.choices import ActivationState, Severity, Via
from ...response.models import Activation
from ...response.timeline import Actor

ACTIONS = ("list", "confirm", "contain", "cancel", "stand_down", "drill", "escalate")


class Command(BaseCommand):
    help = "Confirm, contain, cancel or stand down an activation; run a drill; escalate now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("activation", nargs="?", help="the activation id (a UUID)")
        parser.add_argument("--user", help="the staff user acting (recorded on the timeline)")
        parser.add_argument("--reason", default="")
        parser.add_argument("--state", choices=ActivationState.values)
        parser.add_argument("--title", default="Collective response drill")
        parser.add_argument("--severity", choices=Severity.values, default=Severity.HIGH)
        parser.add_argument("--group", action="append", default=[], help="trust group slug")
        parser.add_argument(
            "--value", action="append", default=[], help="an indicator value for the drill"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "list":
                self._list(options["state"])
            elif action == "escalate":
                self.stdout.write(f"escalated {escalation.escalate_overdue()} step(s)")
            elif action == "drill":
                outcome = reports.start_drill(
                    actor=self._actor(options["user"]),
                    title=options["title"],
                    severity=options["severity"],
                    groups=options["group"],
                    observables=[(None, v) for v in options["value"]],
                )
                self.stdout.write(str(outcome.activation.uid))
            else:
                self._act(action, options)
        except PhalanxError as exc:
            raise CommandError(exc.detail) from None

    def _actor(self, username: str | None) -> Actor:
        if not username:
            raise CommandError("--user (an exchange staff user) is required.")
        user = User.objects.filter(username=username, is_staff=True, is_active=True).first()
        if user is None:
            raise CommandError(f"No active staff user named {username!r}.")
        return Actor.for_staff(user, via=Via.COMMAND)

    def _act(self, action: str, options: dict[str, Any]) -> None:
        uid = options["activation"]
        if not uid:
            raise CommandError("Give the activation id.")
        actor = self._actor(options["user"])
        if action == "confirm":
            activation = lifecycle.confirm(uid=uid, actor=actor)
        elif action == "contain":
            activation = lifecycle.contain(uid=uid, actor=actor)
        elif action == "cancel":
            activation = lifecycle.cancel(uid=uid, actor=actor, reason=options["reason"])
        else:
            activation = lifecycle.stand_down(uid=uid, actor=actor)
        self.stdout.write(f"{activation.uid} {activation.state}")

    def _list(self, state: str | None) -> None:
        rows = Activation.objects.order_by("-declared_at")
        if state:
            rows = rows.filter(state=state)
        for activation in rows[:200]:
            self.stdout.write(
                json.dumps(
                    {
                        "id": str(activation.uid),
                        "state": activation.state,
                        "severity": activation.severity,
                        "drill": activation.is_drill,
                        "declared_at": activation.declared_at.isoformat(),
                        "title": activation.title,
                    }
                )
            )
