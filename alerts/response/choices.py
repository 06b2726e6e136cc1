"""Enumerations of the collective response: activation and task states, severities, how an
activation started, timeline entry kinds, mutual-aid kinds."""

from django.db import models


class Severity(models.TextChoices):
    """Lowest first: `rank` compares them."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


SEVERITY_ORDER: tuple[str, ...] = tuple(Severity.values)


def severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity)


class ActivationState(models.TextChoices):
    DECLARED = "declared", "Declared (awaiting confirmation)"
    ACTIVE = "active", "Active"
    CONTAINED = "contained", "Contained"
    STOOD_DOWN = "stood_down", "Stood down"
    CANCELLED = "cancelled", "Cancelled (false alarm)"


# Open activations take new reports, widen and escalate; closed ones only keep their record.
OPEN_ACTIVATION_STATES = (
    ActivationState.DECLARED,
    ActivationState.ACTIVE,
    ActivationState.CONTAINED,
)
# Members act on (and pull the indicators of) activations in these states.
LIVE_ACTIVATION_STATES = (ActivationState.ACTIVE, ActivationState.CONTAINED)


class Origin(models.TextChoices):
    REPORT = "report", "Attack report"
    INCIDENT = "incident", "STIX incident published as an attack report"
    CORROBORATION = "corroboration", "Sightings by several members"
    DRILL = "drill", "Drill"


class TaskState(models.TextChoices):
    NOTIFIED = "notified", "Notified"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ASSESSED = "assessed", "Assessed"
    MITIGATED = "mitigated", "Mitigated"
    NEEDS_HELP = "needs_help", "Needs help"


class TaskTransition(models.TextChoices):
    """The states a member may set its task to."""

    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ASSESSED = "assessed", "Assessed"
    MITIGATED = "mitigated", "Mitigated"
    NEEDS_HELP = "needs_help", "Needs help"


class ReportSource(models.TextChoices):
    API = "api", "REST API"
    DASHBOARD = "dashboard", "Dashboard"
    STIX_INCIDENT = "stix_incident", "Published STIX incident"
    DRILL = "drill", "Drill run by exchange staff"
    CORROBORATION = "corroboration", "Sightings by several members (no report)"


class ActorKind(models.TextChoices):
    MEMBER = "member", "Member"
    STAFF = "staff", "Exchange staff"
    SYSTEM = "system", "The exchange"


class Via(models.TextChoices):
    API = "api", "REST API"
    DASHBOARD = "dashboard", "Dashboard"
    COMMAND = "command", "Management command"
    PUBLICATION = "publication", "Publication to the exchange"
    WORKER = "worker", "Background worker"
    BEAT = "beat", "Scheduled escalation"


class EntryKind(models.TextChoices):
    DECLARED = "declared", "Activation declared"
    REPORT_JOINED = "report_joined", "Another report joined"
    STATE_CHANGED = "state_changed", "Activation state changed"
    SEVERITY_RAISED = "severity_raised", "Severity raised"
    SCOPE_WIDENED = "scope_widened", "Scope widened"
    MEMBERS_NOTIFIED = "members_notified", "Members notified"
    TASK_STATE = "task_state", "Task state changed"
    TASK_NOTE = "task_note", "Note or evidence added"
    LIKELY_AFFECTED = "likely_affected", "Member likely affected (sighting)"
    DEPLOYED = "deployed", "Indicators pulled (deployment receipt)"
    ESCALATED = "escalated", "Overdue step escalated"
    AID_REQUESTED = "aid_requested", "Help requested"
    AID_OFFERED = "aid_offered", "Help offered"
    AFTER_ACTION = "after_action", "After-action report written"


class EscalationStep(models.TextChoices):
    RENOTIFY = "renotify", "Re-notify the member"
    BACKUP_CONTACTS = "backup_contacts", "Notify the member's backup contacts"
    STAFF = "staff", "Tell exchange staff"


ESCALATION_STEPS: tuple[str, ...] = tuple(EscalationStep.values)


class AidKind(models.TextChoices):
    INCIDENT_RESPONSE = "incident_response", "Incident response staff"
    MALWARE_ANALYSIS = "malware_analysis", "Malware analysis"
    TAKEDOWN = "takedown", "Takedown"
    OTHER = "other", "Other"
