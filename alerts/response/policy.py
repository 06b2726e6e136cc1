"""The response policy, read from `settings.PHALANX_RESPONSE` when it is needed (never at import
time, so tests and deployments can change it).

- AUTO_ACTIVATE: severities that go ACTIVE at once; the others wait for exchange staff
  (default high, critical).
- DUE_MINUTES: per severity, minutes from activation until acknowledge, assess and mitigate
  are due (high: 15, 240, 1440).
- ESCALATION_MINUTES: minutes after a step fell due to re-notify, to tell the backup
  contacts, to tell staff (0, 15, 30); ESCALATION_SWEEP_SECONDS: how often beat looks (60).
- MERGE_WINDOW_HOURS: a report sharing a value with an open activation declared this
  recently joins it (72).
- CORROBORATION_MEMBERS, CORROBORATION_WINDOW_HOURS, CORROBORATION_SEVERITY: K distinct
  members sighting one indicator within the window open an activation of this severity
  (3, 24, medium).
- K_ANONYMITY: an anonymous reporter's sector is shown only if this many members share it (3).
- SEVERITY_AT_AFFECTED: `level:count` pairs; severity rises once this many members are
  affected or likely affected (medium:3, high:10, critical:25).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings

from .choices import ESCALATION_STEPS, Severity, severity_rank


def _conf() -> dict[str, Any]:
    return dict(settings.PHALANX_RESPONSE)


@dataclass(frozen=True)
class DueTimes:
    acknowledge: timedelta
    assess: timedelta
    mitigate: timedelta


def auto_activates(severity: str) -> bool:
    return severity in {s.strip().lower() for s in _conf()["AUTO_ACTIVATE"]}


def due_times(severity: str) -> DueTimes:
    minutes = list(_conf()["DUE_MINUTES"].get(severity) or _conf()["DUE_MINUTES"]["medium"])
    if len(minutes) != 3:
        raise ValueError(f"PHALANX_RESPONSE DUE_MINUTES[{severity!r}] needs three values")
    ack, assess, mitigate = (timedelta(minutes=int(m)) for m in minutes)
    return DueTimes(ack, assess, mitigate)


def escalation_offsets() -> list[timedelta]:
    """How long after a step fell due each escalation step fires (one per `ESCALATION_STEPS`;
    a shorter list stops escalating earlier)."""
    minutes = [int(m) for m in _conf()["ESCALATION_MINUTES"]][: len(ESCALATION_STEPS)]
    return [timedelta(minutes=m) for m in minutes]


def merge_window() -> timedelta:
    return timedelta(hours=int(_conf()["MERGE_WINDOW_HOURS"]))


def corroboration_members() -> int:
    return max(2, int(_conf()["CORROBORATION_MEMBERS"]))


def corroboration_window() -> timedelta:
    return timedelta(hours=int(_conf()["CORROBORATION_WINDOW_HOURS"]))


def corroboration_severity() -> str:
    severity = str(_conf()["CORROBORATION_SEVERITY"]).lower()
    return severity if severity in Severity.values else Severity.MEDIUM


def k_anonymity() -> int:
    return max(1, int(_conf()["K_ANONYMITY"]))


def max_report_observables() -> int:
    return int(_conf().get("MAX_REPORT_OBSERVABLES", 1000))


def sweep_grace() -> timedelta:
    return timedelta(seconds=int(_conf().get("SWEEP_GRACE_SECONDS", 60)))


def severity_for_affected(count: int) -> str | None:
    """The highest severity the number of affected members calls for, or None."""
    best: str | None = None
    for item in _conf()["SEVERITY_AT_AFFECTED"]:
        level, _, threshold = str(item).partition(":")
        level = level.strip().lower()
        if (
            level in Severity.values
            and threshold.strip().isdigit()
            and count >= int(threshold)
            and (best is None or severity_rank(level) > severity_rank(best))
        ):
            best = level
    return best
