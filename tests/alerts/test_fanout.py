"""Deciding who hears about what: policies, private assets, digests, quiet hours, deletions,
and exactly-once alerts. In-process with eager Celery and a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from alerts.choices import DeliveryState
from alerts.models import Alert, Delivery, FanoutJob, Message
from alerts.services import bodies, fanout, outbox
from alerts.services.assets import AssetMatcher, ChunkIndex
from alerts.services.policy import PolicyView, VersionFacts
from exchange.services.delete import delete_object
from members import alerting
from members.choices import EventType
from tests.factories import TLP2, bundle, indicator

from .receiver import Received

pytestmark = pytest.mark.django_db


@pytest.fixture
def publish(django_capture_on_commit_callbacks):
    def run(client, *objects, **params):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.publish(bundle(*objects), **params)
        assert response.status_code == 201, response.content
        return response

    return run


def bodies_at(receiver, path: str) -> list[dict]:
    return [json.loads(r.body) for r in receiver.received(path)]


def object_ids(request: Received) -> list[str]:
    return [o["id"] for o in json.loads(request.body)["data"]["objects"]]


def test_policy_filters_types_confidence_tlp_and_groups(
    member_client, receiver, add_webhook, publish
):
    alice = member_client("Alice", groups=("finance",))
    names = ("Types", "Confidence", "Tlp", "Groups", "Default")
    clients = {n: member_client(n, groups=("finance",)) for n in names}
    for name, client in clients.items():
        add_webhook(client.member, receiver.url(f"/{name}"))
    alerting.set_notification_policy(member=clients["Types"].member, object_types=["malware"])
    alerting.set_notification_policy(member=clients["Confidence"].member, min_confidence=70)
    alerting.set_notification_policy(member=clients["Tlp"].member, tlp_levels=["clear"])
    alerting.set_notification_policy(member=clients["Groups"].member, trust_groups=["finance"])

    weak, strong = indicator(confidence=50), indicator(confidence=80)
    publish(alice, weak, strong)  # TLP:GREEN (the default), to all members
    clear_to_finance = indicator(markings=[TLP2["clear"]])
    publish(alice, clear_to_finance, trust_group="finance")

    assert receiver.received("/Types") == []
    assert [object_ids(r) for r in receiver.received("/Confidence")] == [[strong["id"]]]
    assert [object_ids(r) for r in receiver.received("/Tlp")] == [[clear_to_finance["id"]]]
    assert [object_ids(r) for r in receiver.received("/Groups")] == [[clear_to_finance["id"]]]
    assert [sorted(object_ids(r)) for r in receiver.received("/Default")] == [
        sorted([weak["id"], strong["id"]]),
        [clear_to_finance["id"]],
    ]
    assert not Alert.objects.filter(member=alice.member).exists()  # not told of its own


def test_private_asset_match_is_flagged_for_its_owner_only(
    member_client, receiver, add_webhook, publish
):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    add_webhook(bob.member, receiver.url("/bob"))
    add_webhook(carol.member, receiver.url("/carol"))
    alerting.add_private_asset(member=bob.member, kind="cidr", value="203.0.113.0/24", label="DMZ")
    hit, miss = indicator(value="203.0.113.9"), indicator(value="198.51.100.9")
    publish(alice, hit, miss)

    bob_messages = {b["type"]: b for b in bodies_at(receiver, "/bob")}
    assert set(bob_messages) == {EventType.AFFECTS_YOU, EventType.PUBLISHED}
    affecting = bob_messages[EventType.AFFECTS_YOU]["data"]
    assert affecting["affects_you"] is True
    assert [(a["object_id"], a["matched_assets"]) for a in affecting["alerts"]] == [
        (hit["id"], ["203.0.113.0/24"])
    ]
    [carol_message] = bodies_at(receiver, "/carol")
    assert carol_message["type"] == EventType.PUBLISHED
    assert all(
        a["matched_assets"] == [] and not a["affects_you"] for a in carol_message["data"]["alerts"]
    )
    assert b"203.0.113.0/24" not in receiver.received("/carol")[0].body
    assert Alert.objects.get(member=bob.member, stix_id=hit["id"]).affects_you
    assert not Alert.objects.filter(member=carol.member, affects_you=True).exists()


def test_only_my_assets_drops_everything_else(member_client, add_webhook, receiver, publish):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/bob"))
    alerting.set_notification_policy(member=bob.member, only_my_assets=True)
    alerting.add_private_asset(member=bob.member, kind="domain", value="Bob.Example.")
    domain_indicator = indicator(pattern="[domain-name:value = 'login.bob.example']")
    publish(alice, indicator(), domain_indicator)
    assert [object_ids(r) for r in receiver.received("/bob")] == [[domain_indicator["id"]]]


def test_asset_match_bypasses_the_digest_and_the_rest_waits_for_it(
    member_client, receiver, add_webhook, publish
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/bob"))
    alerting.set_notification_policy(member=bob.member, mode="hourly")
    alerting.add_private_asset(member=bob.member, kind="asn", value="AS64500")
    hit = indicator(pattern="[autonomous-system:number = 64500]")
    others = [indicator(), indicator(), indicator()]
    publish(alice, hit, others[0])
    publish(alice, others[1])
    publish(alice, others[2])

    [urgent] = bodies_at(receiver, "/bob")
    assert urgent["type"] == EventType.AFFECTS_YOU
    digest = Message.objects.get(member=bob.member, event_type=EventType.DIGEST)
    assert not digest.sealed and digest.alerts.count() == 3
    assert not Delivery.objects.filter(message=digest).exists()

    outbox.seal_due_digests(now=digest.due_at - timedelta(seconds=1))
    assert not Delivery.objects.filter(message=digest).exists()  # the window is still open
    assert _seal(digest.due_at + timedelta(seconds=1)) == 1
    _, merged = bodies_at(receiver, "/bob")
    assert merged["type"] == EventType.DIGEST
    assert sorted(a["object_id"] for a in merged["data"]["alerts"]) == sorted(
        o["id"] for o in others
    )


def _seal(now: datetime) -> int:
    count = outbox.seal_due_digests(now=now)
    # The deliveries are due "now" in the sealing clock; run them as the sweeper would.
    Delivery.objects.open().update(next_attempt_at=timezone.now(), enqueued_at=None)
    outbox.sweep()
    return count


@pytest.fixture
def response_builder() -> Iterator[None]:
    bodies.register_data_builder(
        EventType.RESPONSE,
        lambda pairs: {message.pk: {"activation": message.subject_id} for message, _ in pairs},
    )
    yield
    bodies._DATA_BUILDERS.pop(EventType.RESPONSE)


def test_quiet_hours_hold_alerts_but_never_collective_response(
    member_client,
    receiver,
    add_webhook,
    publish,
    response_builder,
    django_capture_on_commit_callbacks,
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/bob"))
    now = datetime.now(tz=UTC)
    start, end = (now - timedelta(hours=1)).time(), (now + timedelta(hours=1)).time()
    alerting.set_notification_policy(
        member=bob.member, quiet_hours_start=start, quiet_hours_end=end, timezone_name="UTC"
    )
    publish(alice, indicator())
    held = Delivery.objects.get(member=bob.member)
    assert held.state == DeliveryState.PENDING and held.next_attempt_at > timezone.now()
    assert receiver.received("/bob") == []

    with django_capture_on_commit_callbacks(execute=True):
        outbox.notify(
            member=bob.member, event_type=EventType.RESPONSE, subject_id="act-1", priority=True
        )
    [urgent] = bodies_at(receiver, "/bob")
    assert urgent["type"] == EventType.RESPONSE and urgent["data"]["activation"] == "act-1"

    # The sweeper leaves the held delivery alone until the quiet hours end.
    with django_capture_on_commit_callbacks(execute=True):
        outbox.sweep()
    assert len(receiver.received("/bob")) == 1
    Delivery.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        outbox.sweep()
    assert [b["type"] for b in bodies_at(receiver, "/bob")] == [
        EventType.RESPONSE,
        EventType.PUBLISHED,
    ]


def test_a_fanout_job_run_twice_writes_nothing_twice(
    member_client, add_webhook, receiver, django_capture_on_commit_callbacks
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/bob"))
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.publish(bundle(indicator())).status_code == 201
    job = FanoutJob.objects.get()
    counts = (Alert.objects.count(), Message.objects.count(), Delivery.objects.count())
    FanoutJob.objects.filter(pk=job.pk).update(done_at=None)  # as if the mark were lost
    with django_capture_on_commit_callbacks(execute=True):
        fanout.run_job(job_id=job.pk)
        fanout.run_job(job_id=job.pk)
    assert (Alert.objects.count(), Message.objects.count(), Delivery.objects.count()) == counts
    assert len(receiver.received("/bob")) == 1


def test_a_fanout_job_that_keeps_failing_is_given_up_and_no_longer_swept(member_client):
    alice = member_client("Alice")
    member_client("Bob")
    # A job whose chunk cannot be read (its row lost its date added): every run raises.
    job = FanoutJob.objects.create(kind=FanoutJob.Kind.PUBLICATION, producer=alice.member)
    for _ in range(fanout.MAX_JOB_RUNS):
        with pytest.raises(AssertionError):
            fanout.run_job(job_id=job.pk)
    assert fanout.run_job(job_id=job.pk) == 0  # given up instead of failing again
    job.refresh_from_db()
    assert job.failed_at is not None and job.done_at is None
    assert job.attempts == fanout.MAX_JOB_RUNS + 1
    later = timezone.now() + timedelta(hours=1)
    assert outbox.sweep(now=later) == (0, 0)
    assert fanout.run_job(job_id=job.pk) == 0
    job.refresh_from_db()
    assert job.attempts == fanout.MAX_JOB_RUNS + 1


def test_large_publication_is_split_into_bounded_jobs(
    member_client, add_webhook, receiver, publish
):
    alice, bob = member_client("Alice"), member_client("Bob")
    add_webhook(bob.member, receiver.url("/bob"))
    objects = [indicator() for _ in range(5)]
    with override_settings(PHALANX_ALERTS={**settings.PHALANX_ALERTS, "FANOUT_CHUNK": 2}):
        publish(alice, *objects)
    assert FanoutJob.objects.count() == 3
    assert sorted(len(object_ids(r)) for r in receiver.received("/bob")) == [1, 2, 2]
    assert Alert.objects.filter(member=bob.member).count() == 5


def test_withdrawn_object_is_announced_to_the_members_alerted_about_it(
    member_client, add_webhook, receiver, publish, django_capture_on_commit_callbacks
):
    alice, bob, carol = member_client("Alice"), member_client("Bob"), member_client("Carol")
    add_webhook(bob.member, receiver.url("/bob"))
    add_webhook(carol.member, receiver.url("/carol"))
    alerting.set_notification_policy(member=carol.member, object_types=["malware"])
    obj = indicator()
    publish(alice, obj)
    with django_capture_on_commit_callbacks(execute=True):
        delete_object(member=alice.member, stix_id=obj["id"])
    withdrawn = bodies_at(receiver, "/bob")[-1]
    assert withdrawn["type"] == EventType.DELETED
    assert withdrawn["data"]["object_id"] == obj["id"]
    assert receiver.received("/carol") == []  # never alerted about it, so not told


def test_a_member_with_no_channel_still_has_its_in_app_alert(member_client, publish):
    alice, bob = member_client("Alice"), member_client("Bob")
    obj = indicator()
    publish(alice, obj)
    assert Alert.objects.filter(member=bob.member, stix_id=obj["id"]).exists()
    assert not Delivery.objects.filter(member=bob.member).exists()


# --- the rules as plain values -----------------------------------------------------------------


def test_quiet_hours_across_midnight_in_the_members_time_zone():
    policy = PolicyView(
        member_id=1,
        quiet_start=time(22),
        quiet_end=time(6),
        timezone="Europe/Paris",
        _zone=__import__("zoneinfo").ZoneInfo("Europe/Paris"),
    )
    # 23:30 in Paris (winter, UTC+1) -> quiet until 06:00 Paris = 05:00 UTC the next day.
    late = datetime(2026, 1, 10, 22, 30, tzinfo=UTC)
    assert policy.quiet_until(late) == datetime(2026, 1, 11, 5, 0, tzinfo=UTC)
    early = datetime(2026, 1, 11, 4, 0, tzinfo=UTC)  # 05:00 in Paris
    assert policy.quiet_until(early) == datetime(2026, 1, 11, 5, 0, tzinfo=UTC)
    assert policy.quiet_until(datetime(2026, 1, 11, 12, 0, tzinfo=UTC)) is None


def test_digest_windows_close_on_the_hour_or_at_the_members_digest_hour():
    now = datetime(2026, 1, 10, 9, 15, tzinfo=UTC)
    assert PolicyView(member_id=1, mode="hourly").digest_due_at(now) == datetime(
        2026, 1, 10, 10, 0, tzinfo=UTC
    )
    daily = PolicyView(member_id=1, mode="daily", digest_hour=8)
    assert daily.digest_due_at(now) == datetime(2026, 1, 11, 8, 0, tzinfo=UTC)
    assert daily.digest_due_at(now.replace(hour=7)) == datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def _facts(version_id: int, data: dict) -> VersionFacts:
    return VersionFacts(
        version_id,
        data["id"],
        data["type"],
        datetime.now(tz=UTC),
        "green",
        None,
        1,
        1,
        json.dumps(data),
    )


def test_asset_matching_by_network_domain_email_domain_and_asn():
    objects = {
        1: indicator(value="10.1.2.3"),
        2: indicator(pattern="[ipv4-addr:value ISSUBSET '10.0.0.0/8']"),
        3: indicator(pattern="[url:value = 'https://cdn.shop.example/x']"),
        4: indicator(pattern="[email-message:from_ref.value = 'ceo@mail.corp.example']"),
        5: indicator(pattern="[autonomous-system:number = 64501]"),
        6: {
            "type": "ipv6-addr",
            "spec_version": "2.1",
            "id": "ipv6-addr--" + "1" * 8 + "-1111-4111-8111-111111111111",
            "value": "2001:db8:1::5",
        },
        7: indicator(value="192.0.2.1"),
    }
    index = ChunkIndex.build([_facts(k, v) for k, v in objects.items()])
    matcher = AssetMatcher.of(
        [
            ("cidr", "10.1.0.0/16"),
            ("domain", "shop.example"),
            ("email_domain", "corp.example"),
            ("asn", "64501"),
            ("cidr", "2001:db8::/32"),
        ]
    )
    assert matcher.hits(index) == {
        1: ["10.1.0.0/16"],
        2: ["10.1.0.0/16"],
        3: ["shop.example"],
        4: ["corp.example"],
        5: ["64501"],
        6: ["2001:db8::/32"],
    }
    assert AssetMatcher.of([("domain", "hop.example")]).hits(index) == {}


def test_a_fanout_stopped_midway_is_finished_by_the_next_run(
    member_client, add_webhook, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    alice = member_client("Alice")
    others = [member_client(f"Peer {n}") for n in range(3)]
    for client in others:
        add_webhook(client.member, receiver.url(f"/{client.member.pk}"))
    monkeypatch.setattr(fanout, "WRITE_CHUNK", 1)
    real_write, calls = fanout._write, []

    def crash_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker died")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(fanout, "_write", crash_on_second_chunk)
    with django_capture_on_commit_callbacks(execute=True):
        # Celery is eager here: the crash happens inside the publication's receiver, which
        # logs it and leaves the job to the sweeper, as the publication itself stands.
        assert alice.publish(bundle(indicator())).status_code == 201
    job = FanoutJob.objects.get()
    assert job.done_at is None and Alert.objects.count() == 1  # the first chunk committed
    assert len(receiver.received(f"/{others[0].member.pk}")) == 1  # ... and sent at once
    monkeypatch.setattr(fanout, "_write", real_write)
    grace = timedelta(seconds=settings.PHALANX_ALERTS["SWEEP_GRACE_SECONDS"] + 1)
    with django_capture_on_commit_callbacks(execute=True):
        # The beat sweeper finds the unfinished job and queues it again (eager: runs it).
        assert outbox.sweep(now=timezone.now() + grace) == (0, 1)
    assert outbox.sweep(now=timezone.now() + grace) == (0, 0)  # all done and sent
    job.refresh_from_db()
    assert job.done_at is not None
    assert sorted(Alert.objects.values_list("member_id", flat=True)) == sorted(
        c.member.pk for c in others
    )
    assert all(len(receiver.received(f"/{c.member.pk}")) == 1 for c in others)


@pytest.mark.services
def test_a_job_held_by_one_run_is_skipped_by_another(member_client):
    """A duplicate task message that arrives while a run still works on the job leaves it
    alone (PostgreSQL session lock, held by another connection here)."""
    from django.db import connections

    alice = member_client("Alice")
    job_id = fanout.plan_publication(
        producer_id=alice.member.pk, version_ids=[1], date_added=timezone.now()
    )[0]
    key = [fanout.JOB_LOCK_CLASS, job_id % 2**31]
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
        assert fanout.run_job(job_id=job_id) == 0
        assert FanoutJob.objects.get(pk=job_id).done_at is None  # still the other run's
        with fanout.job_lock(job_id) as held:
            assert not held
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        with fanout.job_lock(job_id) as held:
            assert held  # the other run let go
    finally:
        other.close()
