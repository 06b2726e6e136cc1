"""The fan-out's "who may read this" must agree with the exchange's one visibility rule
(`visible_to`), and every member must be alerted about exactly what it may read (and did not
produce itself). Random worlds, seeded so that a failure reproduces."""

from __future__ import annotations

import random

import pytest

from alerts.models import Alert
from alerts.services.recipients import readers_by_audience
from alerts.services.visibility import compile_rule, readable_bodies
from exchange.models import StixObject
from members import services as member_services
from members.models import Member, TrustGroup
from tests.factories import TLP2, bundle, indicator

pytestmark = pytest.mark.django_db

GROUPS = ("alpha", "beta")
LEVELS = ("clear", "green", "amber", "red")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fanout_recipients_agree_with_visible_to(
    seed, member_client, django_capture_on_commit_callbacks
):
    rng = random.Random(seed)
    clients = [
        member_client(f"M{seed}-{n}", groups=tuple(g for g in GROUPS if rng.random() < 0.6))
        for n in range(6)
    ]
    for _ in range(12):
        producer = rng.choice(clients)
        own = sorted(
            TrustGroup.objects.filter(
                memberships__member=producer.member, is_all_members=False
            ).values_list("slug", flat=True)
        )
        level = rng.choice(LEVELS)
        params: dict[str, object] = {}
        if own and rng.random() < 0.5:
            params["trust_group"] = rng.choice(own)
        peers = [c for c in clients if c is not producer]
        if level in ("amber", "red") and (level == "red" or rng.random() < 0.5):
            group_slug = params.get("trust_group", "all-members")
            eligible = [
                c for c in peers if c.member.memberships.filter(group__slug=group_slug).exists()
            ]
            if not eligible:
                continue
            params["recipient"] = [
                c.member.identity_id for c in rng.sample(eligible, min(2, len(eligible)))
            ]
        with django_capture_on_commit_callbacks(execute=True):
            response = producer.publish(bundle(indicator(markings=[TLP2[level]])), **params)
        assert response.status_code == 201, response.content
        if rng.random() < 0.2:  # some access ends later: a member leaves a group
            leaver = rng.choice(clients)
            group = TrustGroup.objects.filter(
                memberships__member=leaver.member, is_all_members=False
            ).first()
            if group is not None:
                member_services.remove_member_from_group(member=leaver.member, group=group)
    deactivated = rng.choice(clients).member
    deactivated.is_active = False
    deactivated.save()

    audiences = set(StixObject.objects.values_list("audience_id", flat=True))
    readers = readers_by_audience(audiences)
    for member in Member.objects.all():
        visible = set(StixObject.objects.visible_to(member).values_list("audience_id", flat=True))
        by_inverse = {a for a in audiences if member.pk in readers[a]}
        assert by_inverse == visible, f"seed {seed}: member {member.name}"

    for client in clients:
        member = Member.objects.get(pk=client.member.pk)
        alerted = set(Alert.objects.visible_to(member).values_list("stix_id", flat=True))
        readable_now = set(
            StixObject.objects.visible_to(member)
            .exclude(producer=member)
            .values_list("stix_id", flat=True)
        )
        # Alerts were decided at publication time; the inbox shows those still readable now,
        # which is every readable object except those that became readable only later.
        assert alerted <= readable_now, f"seed {seed}: {member.name} sees too much"
        ever_alerted = set(Alert.objects.filter(member=member).values_list("stix_id", flat=True))
        assert readable_now <= ever_alerted, f"seed {seed}: {member.name} missed an alert"


@pytest.mark.parametrize("seed", [4, 5])
def test_batched_visibility_runs_exactly_the_rule(
    seed, member_client, django_capture_on_commit_callbacks
):
    """`readable_bodies` (the rule compiled once per batch) answers what `visible_to` answers,
    member by member, including for inactive members and named recipients."""
    rng = random.Random(seed)
    clients = [
        member_client(f"V{seed}-{n}", groups=tuple(g for g in GROUPS if rng.random() < 0.5))
        for n in range(7)
    ]
    for _ in range(10):
        producer = rng.choice(clients)
        level = rng.choice(LEVELS)
        params: dict[str, object] = {}
        if level == "red":
            peers = [c for c in clients if c is not producer]
            params["recipient"] = [c.member.identity_id for c in rng.sample(peers, 2)]
        response = producer.publish(bundle(indicator(markings=[TLP2[level]])), **params)
        assert response.status_code == 201, response.content
    quitter = clients[3].member
    quitter.is_active = False
    quitter.save()
    version_ids = set(StixObject.objects.values_list("id", flat=True))
    members = list(Member.objects.filter(pk__in=[c.member.pk for c in clients]))
    wanted = {m.pk: (m, set(rng.sample(sorted(version_ids), 6))) for m in members}
    assert compile_rule(members[0], members[1], sorted(version_ids)) is not None
    batched = readable_bodies(wanted)
    for member, ids in wanted.values():
        expected = dict(
            StixObject.objects.visible_to(member).filter(id__in=ids).values_list("id", "body")
        )
        assert batched[member.pk] == expected, f"seed {seed}: {member.name}"
    # Two members: below the batch size where compiling once pays; same answers.
    pair = dict(list(wanted.items())[:2])
    assert readable_bodies(pair) == {pk: batched[pk] for pk in pair}


@pytest.mark.parametrize("seed", [6, 7])
def test_visibility_by_type_runs_once_per_audience_list_and_agrees_with_visible_to(
    seed, member_client, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    """Told the versions' types (indicators: no graph part), the batched rule no longer needs
    the member's id: members reading the same audiences share one run of it, and every member
    still gets exactly what `visible_to` gives it, named recipients and inactive members too."""
    rng = random.Random(seed)
    clients = [
        member_client(f"T{seed}-{n}", groups=tuple(g for g in GROUPS if rng.random() < 0.5))
        for n in range(8)
    ]
    for _ in range(10):
        producer = rng.choice(clients)
        level = rng.choice(LEVELS)
        params: dict[str, object] = {}
        if level == "red":
            peers = [c for c in clients if c is not producer]
            params["recipient"] = [c.member.identity_id for c in rng.sample(peers, 2)]
        response = producer.publish(bundle(indicator(markings=[TLP2[level]])), **params)
        assert response.status_code == 201, response.content
    quitter = clients[5].member
    quitter.is_active = False
    quitter.save()
    version_ids = sorted(StixObject.objects.values_list("id", flat=True))
    members = list(Member.objects.filter(pk__in=[c.member.pk for c in clients]))
    statement = compile_rule(members[0], members[1], version_ids, types={"indicator"})
    assert statement is not None and statement.per_audiences
    wanted = {m.pk: (m, set(rng.sample(version_ids, 6))) for m in members}
    # The audiences, then one statement for all members (fewer than UNION_MEMBERS distinct
    # audience lists): no query per member.
    with django_assert_max_num_queries(2):
        batched = readable_bodies(wanted, types={"indicator"})
    for member, ids in wanted.values():
        expected = dict(
            StixObject.objects.visible_to(member).filter(id__in=ids).values_list("id", "body")
        )
        assert batched[member.pk] == expected, f"seed {seed}: {member.name}"
    # A type the versions are not of: nothing is returned, never a wrong body.
    assert not any(readable_bodies(wanted, types={"malware"}).values())
