"""Dashboard forms of the composite pages. They check the shape of what a browser sent; the
services decide what it means."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms

from exchange import stix
from exchange.models import TriageState
from exchange.paging import BadCursor, Position, decode_cursor
from exchange.services.triage import MAX_BULK, QueueFilters
from members.choices import SUBSCRIBABLE_EVENTS, AssetKind, DeliveryMode, EventType, Tlp
from members.exceptions import PhalanxError
from members.models import Member, TrustGroup, User

from .response.choices import AidKind, Severity, TaskState
from .response.stixbuild import VALUE_KINDS
from .response.taskflow import TaskUpdate

OBSERVABLE_KINDS = frozenset(VALUE_KINDS)
STIX_TYPE = r"^[a-z0-9][a-z0-9-]{0,249}\Z"
COMMON_TYPES = (
    "indicator",
    "malware",
    "attack-pattern",
    "campaign",
    "intrusion-set",
    "threat-actor",
    "tool",
    "vulnerability",
    "infrastructure",
    "incident",
    "observed-data",
    "report",
    "course-of-action",
    "grouping",
    "location",
    "ipv4-addr",
    "domain-name",
    "url",
    "file",
)


class TriageFilterForm(forms.Form):
    common_types = COMMON_TYPES
    state = forms.ChoiceField(
        required=False,
        choices=[
            ("open", "Open (new or in review)"),
            ("all", "All states"),
            *TriageState.State.choices,
        ],
    )
    type = forms.RegexField(
        regex=STIX_TYPE,
        required=False,
        max_length=250,
        error_messages={"invalid": "Not a STIX type name."},
    )
    tlp = forms.ChoiceField(required=False, choices=[("", "Any TLP"), *Tlp.choices])
    producer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    group = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    min_confidence = forms.IntegerField(required=False, min_value=0, max_value=100)
    affects = forms.BooleanField(required=False, label="Affects us")
    added_from = forms.DateField(required=False, label="Added from")
    added_to = forms.DateField(required=False, label="Added until")
    q = forms.CharField(required=False, max_length=2048, label="Value or STIX id")
    assignee = forms.ChoiceField(
        required=False, choices=[("", "Anyone"), ("me", "Assigned to me"), ("none", "Unassigned")]
    )
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def __init__(self, data: Any, *, peers: list[Member], groups: list[TrustGroup]) -> None:
        super().__init__(data)
        producer = self.fields["producer"]
        group = self.fields["group"]
        assert isinstance(producer, forms.TypedChoiceField)
        assert isinstance(group, forms.TypedChoiceField)
        producer.choices = [("", "Any producer"), *((m.pk, m.name) for m in peers)]
        group.choices = [("", "Any trust group"), *((g.pk, g.name) for g in groups)]

    def clean_added_to(self) -> Any:
        value = self.cleaned_data.get("added_to")
        if value is not None and value.year >= 9999:
            raise forms.ValidationError("Pick a date before the year 9999.")
        return value

    def clean_cursor(self) -> Position | None:
        raw = self.cleaned_data.get("cursor") or ""
        if not raw:
            return None
        try:
            return decode_cursor(raw)
        except BadCursor:
            raise forms.ValidationError("This page link is not valid any more.") from None

    def filters(self) -> QueueFilters:
        data = self.cleaned_data

        def day_start(value: Any) -> datetime | None:
            return datetime.combine(value, time.min, tzinfo=UTC) if value else None

        # "Until" a day includes that whole day: the bound is the start of the next one.
        added_to = day_start(data.get("added_to"))
        if added_to is not None:
            added_to += timedelta(days=1)
        return QueueFilters(
            states=(data.get("state") or "open",),
            types=(data["type"],) if data.get("type") else (),
            tlps=(data["tlp"],) if data.get("tlp") else (),
            producer_id=data.get("producer"),
            group_id=data.get("group"),
            min_confidence=data.get("min_confidence"),
            added_from=day_start(data.get("added_from")),
            added_to=added_to,
            search=(data.get("q") or "").strip(),
            assignee=data.get("assignee") or "",
        )


TRIAGE_ACTIONS = [
    *((f"state:{value}", f"Mark {label.lower()}") for value, label in TriageState.State.choices),
    ("assign:me", "Assign to me"),
    ("assign:none", "Unassign"),
]


class BulkTriageForm(forms.Form):
    ids = forms.MultipleChoiceField(
        required=True, error_messages={"required": "Select at least one item."}
    )
    action = forms.CharField(max_length=40)
    next = forms.CharField(required=False, max_length=4000)

    def __init__(self, data: Any, *, users: list[User]) -> None:
        super().__init__(data)
        self.users = users
        ids = self.fields["ids"]
        assert isinstance(ids, forms.MultipleChoiceField)
        # Any STIX id shape is accepted here; the service checks each against visibility.
        ids.valid_value = lambda value: isinstance(value, str) and 0 < len(value) <= 300  # type: ignore[method-assign]

    def clean_ids(self) -> list[str]:
        ids = list(self.cleaned_data["ids"])
        if len(ids) > MAX_BULK:
            raise forms.ValidationError(f"At most {MAX_BULK} items at once.")
        return ids

    def clean_action(self) -> tuple[str, Any]:
        action = self.cleaned_data["action"]
        kind, _, value = action.partition(":")
        if kind == "state" and value in TriageState.State.values:
            return kind, value
        if kind == "assign" and value in ("me", "none"):
            return kind, value
        if (
            kind == "assign"
            and value.isascii()
            and value.isdigit()
            and any(u.pk == int(value) for u in self.users)
        ):
            return kind, int(value)
        raise forms.ValidationError("Unknown action.")


# --- member settings ---------------------------------------------------------------------------


class WebhookForm(forms.Form):
    url = forms.CharField(max_length=2000, label="URL (https)")
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(e.value, e.label) for e in EventType if e.value in SUBSCRIBABLE_EVENTS],
        help_text="None ticked: every event type.",
    )


class PolicyForm(forms.Form):
    trust_groups = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every group you are in.",
    )
    object_types = forms.CharField(
        required=False, max_length=2000, help_text="Comma-separated STIX types; empty: every type."
    )
    tlp_levels = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=Tlp.choices,
        help_text="None ticked: every level.",
    )
    min_confidence = forms.IntegerField(required=False, min_value=0, max_value=100)
    only_my_assets = forms.BooleanField(required=False, label="Only what touches our assets")
    mode = forms.ChoiceField(choices=DeliveryMode.choices)
    digest_hour = forms.IntegerField(min_value=0, max_value=23)
    quiet_hours_start = forms.TimeField(required=False)
    quiet_hours_end = forms.TimeField(required=False)
    timezone_name = forms.CharField(max_length=64, label="Time zone")
    email_enabled = forms.BooleanField(required=False, label="E-mail alerts")

    def __init__(self, *args: Any, groups: list[TrustGroup], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["trust_groups"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(g.slug, g.name) for g in groups]

    def service_arguments(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["object_types"] = [t for t in data["object_types"].split(",") if t.strip()]
        return data


class AssetForm(forms.Form):
    kind = forms.ChoiceField(choices=AssetKind.choices)
    value = forms.CharField(max_length=255)
    label = forms.CharField(max_length=100, required=False)


# --- collective response -----------------------------------------------------------------------


class AttackReportForm(forms.Form):
    summary = forms.CharField(max_length=300)
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.HIGH)
    description = forms.CharField(required=False, max_length=20_000, widget=forms.Textarea)
    techniques = forms.CharField(
        required=False, max_length=2000, help_text="ATT&CK ids, comma-separated (T1566, …)."
    )
    observables = forms.CharField(
        required=False,
        max_length=200_000,
        widget=forms.Textarea,
        help_text="One per line: an address, network, domain, URL, e-mail or hash; or "
        "type:value (ipv4:203.0.113.9).",
    )
    objects = forms.CharField(
        required=False,
        max_length=2_000_000,
        widget=forms.Textarea,
        label="STIX objects",
        help_text="Optional: a JSON array of further STIX 2.1 objects to publish with the report.",
    )
    tlp = forms.ChoiceField(
        required=False, choices=[("", "Our default TLP"), *Tlp.choices], label="TLP"
    )
    trust_groups = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: all members."
    )
    recipients = forms.CharField(
        required=False,
        max_length=2000,
        help_text="For TLP:AMBER or RED: member names, comma-separated.",
    )
    anonymous = forms.BooleanField(
        required=False, label="Report anonymously (others see at most a sector)"
    )

    def __init__(self, *args: Any, groups: list[TrustGroup], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["trust_groups"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(g.slug, g.name) for g in groups]

    def clean_observables(self) -> list[tuple[str | None, str]]:
        found: list[tuple[str | None, str]] = []
        for line in str(self.cleaned_data.get("observables") or "").splitlines():
            text = line.strip()
            if not text:
                continue
            kind, sep, value = text.partition(":")
            # "type:value" names the kind; a URL or an IPv6 address has colons of its own,
            # but never starts with a kind name and a colon.
            if sep and kind.lower() in OBSERVABLE_KINDS:
                found.append((kind.lower(), value.strip()))
            else:
                found.append((None, text))
        return found

    def clean_objects(self) -> list[Any]:
        raw = str(self.cleaned_data.get("objects") or "").strip()
        if not raw:
            return []
        try:
            parsed = stix.parse_json(raw.encode())
        except PhalanxError as exc:
            raise forms.ValidationError(exc.detail) from None
        if not isinstance(parsed, list):
            raise forms.ValidationError("Give a JSON array of STIX objects.")
        return parsed

    def split(self, name: str) -> list[str]:
        return [v.strip() for v in str(self.cleaned_data.get(name) or "").split(",") if v.strip()]


class TaskUpdateForm(forms.Form):
    to_state = forms.ChoiceField(required=False, choices=[("", "—"), *TaskState.choices])
    affected = forms.TypedChoiceField(
        required=False,
        choices=[("", "—"), ("yes", "Affected"), ("no", "Not affected")],
        coerce=lambda v: v == "yes",
        empty_value=None,
    )
    notes = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea)
    evidence = forms.CharField(
        required=False, max_length=10_000, help_text="One item per line.", widget=forms.Textarea
    )
    next = forms.CharField(required=False, max_length=4000)

    def update(self) -> Any:
        data = self.cleaned_data
        return TaskUpdate(
            to_state=data.get("to_state") or None,
            affected=data.get("affected"),
            notes=data.get("notes") or "",
            evidence=[
                line.strip() for line in (data.get("evidence") or "").splitlines() if line.strip()
            ],
        )


class AidRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=AidKind.choices)
    description = forms.CharField(max_length=10_000, widget=forms.Textarea)
    share_identity = forms.BooleanField(required=False, label="Show our name to the community")


class AidOfferForm(forms.Form):
    message = forms.CharField(max_length=10_000, widget=forms.Textarea)
    contact = forms.CharField(required=False, max_length=300)


class StaffActionForm(forms.Form):
    reason = forms.CharField(required=False, max_length=500)


class DrillForm(forms.Form):
    title = forms.CharField(max_length=250)
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.HIGH)
    trust_groups = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: all members."
    )

    def __init__(self, *args: Any, groups: list[TrustGroup], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["trust_groups"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(g.slug, g.name) for g in groups]
