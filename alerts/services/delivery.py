"""Sending deliveries: lease the rows, build each message for its recipient, send, record.

A run (one task message, carrying a small batch of delivery ids) leases its rows in one UPDATE
(`claimed_by` = its task id, `claimed_until`), so two task messages for the same delivery never
send at once; the same task message redelivered after its worker died takes its own leases back
at once and sends again with the same `webhook-id`. Taking a lease counts an attempt, so a
delivery whose runs keep crashing still ends dead after a bounded number of tries. Only the run
holding the lease records a result.

The database work of a batch is shared (one claim, one load, one visibility query per recipient,
one write of the results); the sends themselves run concurrently on a small thread pool, so a
receiver that hangs delays only its own delivery's thread.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from members.alerting import check_webhook_url, disable_webhook_endpoint
from members.choices import EventType, Role
from members.models import Member, User, WebhookEndpoint
from members.netguard import AddressRefused

from .. import signing
from ..choices import Channel, DeliveryState
from ..models import Attempt, Delivery
from . import bodies, outbox, transport

logger = logging.getLogger(__name__)

# Failures worth another try; anything else (4xx, a redirect, a refused address) is final.
RETRYABLE = frozenset(
    {
        "timeout",
        "connect_timeout",
        "connect_error",
        "tls_error",
        "protocol_error",
        "http_error",
        "http_5xx",
        "http_408",
        "http_429",
        "smtp_error",
        "internal_error",
    }
)
# A countdown message fires at its ETA by the worker's clock; a moment early still counts as due.
EARLY = timedelta(milliseconds=500)
SENT, FAILED, DEAD, POSTPONED, LOST = "delivered", "failed", "dead", "postponed", "lease_lost"
RECORDED_FIELDS = (
    "state",
    "attempts",
    "next_attempt_at",
    "enqueued_at",
    "claimed_by",
    "claimed_until",
    "last_status_code",
    "last_error_class",
    "delivered_at",
)
FINAL_FIELDS = tuple(f for f in RECORDED_FIELDS if f not in ("attempts", "next_attempt_at"))


@dataclass(frozen=True)
class Result:
    """An attempt's outcome as the outbox records it."""

    status_code: int | None
    error_class: str
    duration_ms: int = 0
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error_class == ""


@dataclass(frozen=True)
class Verdict:
    """What became of one delivery in this run: a result (`contacted`: someone was, or was
    about to be, contacted, so an attempt is logged), or a postponement without an attempt."""

    delivery: Delivery
    result: Result | None = None
    contacted: bool = True
    postpone_until: datetime | None = None


def _alerts_setting(name: str) -> float:
    return float(settings.PHALANX_ALERTS[name])


def lease_seconds() -> float:
    # Longer than one send can take, so a live run never loses its lease to another.
    return _alerts_setting("CONNECT_TIMEOUT") * 2 + _alerts_setting("READ_TIMEOUT") + 30


def retry_delay(attempts: int, result: Result, *, max_attempts: int = 0) -> float | None:
    """Seconds until the next try after `attempts` tries, or None when there is none: the
    result is final, or the schedule is used up. Jitter spreads retries of many deliveries
    that failed together; a receiver's Retry-After is honoured (up to a day)."""
    if result.error_class not in RETRYABLE:
        return None
    schedule = settings.PHALANX_ALERTS["RETRY_SCHEDULE"]
    limit = max_attempts or len(schedule) + 1
    if attempts >= limit or attempts > len(schedule):
        return None
    delay = schedule[attempts - 1] * random.uniform(0.8, 1.2)  # noqa: S311  jitter, not secrets
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, 86400.0))
    return delay


def _limit(delivery: Delivery) -> int:
    return delivery.max_attempts or len(settings.PHALANX_ALERTS["RETRY_SCHEDULE"]) + 1


# --- the run -----------------------------------------------------------------------------------


def deliver(*, delivery_ids: Sequence[int], claim: str) -> Counter[str]:
    """Try the given deliveries that are due and not leased to another run; count outcomes."""
    now = timezone.now()
    Delivery.objects.claimable(now=now, claim=claim, early=EARLY).filter(
        pk__in=list(delivery_ids)
    ).update(
        claimed_by=claim,
        claimed_until=now + timedelta(seconds=lease_seconds()),
        # A run that takes back its own lease (its try died with the worker) counts a new
        # attempt too: the receiver was contacted, and a send that kills its worker every
        # time must still end dead instead of being redelivered for ever.
        attempts=F("attempts") + 1,
    )
    rows = list(
        Delivery.objects.select_related("message", "member", "endpoint")
        .filter(pk__in=list(delivery_ids), claimed_by=claim)
        .order_by("id")
    )
    if not rows:
        return Counter()
    usable = [d for d in rows if d.attempts <= _limit(d)]
    contents = bodies.build_many((d.message, d.member) for d in usable)
    verdicts: list[Verdict] = []
    jobs: list[tuple[Delivery, Callable[[], Result]]] = []
    for delivery in rows:
        if delivery.attempts > _limit(delivery):
            verdicts.append(Verdict(delivery, Result(None, "too_many_attempts"), contacted=False))
            continue
        prepared = _prepare(delivery, contents.get(delivery.message_id), now)
        if isinstance(prepared, Verdict):
            verdicts.append(prepared)
        else:
            jobs.append((delivery, prepared))
    verdicts.extend(_run(jobs, claim))
    return _record(verdicts, claim)


def _prepare(
    delivery: Delivery, content: bodies.Content | None, now: datetime
) -> Verdict | Callable[[], Result]:
    """Either a verdict reached without sending, or the send to run."""
    if delivery.channel == Channel.EMAIL:
        recipients = email_recipients(delivery)
        if not recipients:
            return Verdict(delivery, Result(None, "no_recipient"), contacted=False)
        if content is None:
            return Verdict(delivery, Result(None, "no_access"), contacted=False)
        subject, text = bodies.email_text(content)
        return lambda: _send_email(subject, text, recipients)
    endpoint = delivery.endpoint
    assert endpoint is not None
    is_test = delivery.message.event_type == EventType.TEST
    if not endpoint.is_active and not is_test:
        return Verdict(delivery, Result(None, "endpoint_disabled"), contacted=False)
    if not is_test:
        wait_until = _circuit_wait(endpoint, now)
        if wait_until is not None:
            return Verdict(delivery, postpone_until=wait_until)
    if content is None:
        return Verdict(delivery, Result(None, "no_access"), contacted=False)
    body = bodies.webhook_body(content)
    secrets = endpoint.signing_secrets(now)
    url, webhook_id = endpoint.url, delivery.webhook_id
    return lambda: _send_webhook(url, secrets, webhook_id, body)


def _send_webhook(url: str, secrets: list[str], webhook_id: str, body: bytes) -> Result:
    """Check the address (again, at every send), sign, post. No database access: this runs
    on the send threads."""
    try:
        target = check_webhook_url(url)
    except AddressRefused as refused:
        return Result(None, refused.code)
    headers = signing.headers_for(secrets, webhook_id, int(time.time()), body)
    outcome = transport.post(
        target,
        body,
        headers,
        connect_timeout=_alerts_setting("CONNECT_TIMEOUT"),
        read_timeout=_alerts_setting("READ_TIMEOUT"),
        max_response_bytes=int(settings.PHALANX_ALERTS["RESPONSE_MAX_BYTES"]),
    )
    return Result(
        outcome.status_code, outcome.error_class, outcome.duration_ms, outcome.retry_after
    )


def _send_email(subject: str, text: str, recipients: list[str]) -> Result:
    started = time.monotonic()
    try:
        EmailMessage(subject, text, settings.DEFAULT_FROM_EMAIL, recipients).send()
        error = ""
    except TimeoutError:
        error = "timeout"
    except OSError:  # smtplib errors, refused connections and DNS failures are all OSErrors
        error = "smtp_error"
    return Result(None, error, int((time.monotonic() - started) * 1000))


def email_recipients(delivery: Delivery) -> list[str]:
    """The addresses of an e-mail delivery, read at send time: the member's contact address,
    and for notices about its set-up, its admins too."""
    member = delivery.member
    addresses = [member.contact_email] if member.contact_email else []
    if delivery.message.event_type == EventType.CIRCUIT_OPENED:
        admins = User.objects.filter(member=member, role=Role.ADMIN, is_active=True).exclude(
            email=""
        )
        addresses += [a for a in admins.values_list("email", flat=True) if a not in addresses]
    message = delivery.message
    if message.event_type == EventType.RESPONSE and message.details.get("to_backup_contacts"):
        # An overdue collective-response step escalated to the member's backup contacts.
        backups = [a for a in member.backup_contacts if isinstance(a, str)]
        addresses += [a for a in backups if a not in addresses]
    return addresses


def _guarded(job: Callable[[], Result]) -> Result:
    try:
        return job()
    except Exception:
        logger.exception("alerts: a send failed unexpectedly")
        return Result(None, "internal_error")


_SEND_THREADS = 128
_send_pool: ThreadPoolExecutor | None = None
_send_pool_lock = threading.Lock()


def _sender() -> ThreadPoolExecutor:
    """The process's send threads, made on first use (so each worker process, a prefork child
    too, has its own) and reused by every batch."""
    global _send_pool
    with _send_pool_lock:
        if _send_pool is None:
            _send_pool = ThreadPoolExecutor(_SEND_THREADS, thread_name_prefix="alerts-send")
        return _send_pool


def _run(jobs: list[tuple[Delivery, Callable[[], Result]]], claim: str) -> list[Verdict]:
    """Run the sends of one batch at once on the send threads, and wait for them a short while
    (BATCH_PATIENCE_SECONDS). A send still running then (its receiver hangs) is left to finish
    on its thread and record its own result: a dead receiver holds one send thread until the
    read timeout, never the worker slot the other deliveries need (and after a few failures
    its circuit opens, so it stops taking threads at all). Its row stays leased meanwhile; if
    the process dies, the lease expires and the sweeper sends it again."""
    if len(jobs) <= 1:
        return [Verdict(delivery, _guarded(job)) for delivery, job in jobs]
    futures = {_sender().submit(_guarded, job): delivery for delivery, job in jobs}
    done, late = wait(futures, timeout=_alerts_setting("BATCH_PATIENCE_SECONDS"))
    for future in late:
        future.add_done_callback(partial(_record_late, futures[future], claim))
    return [Verdict(futures[future], future.result()) for future in done]


def _record_late(delivery: Delivery, claim: str, future: Future[Result]) -> None:
    """Record the result of a send that outlasted its batch, on the send's own thread."""
    try:
        _record([Verdict(delivery, future.result())], claim)
    except Exception:
        logger.exception("alerts: recording a late send of delivery %s failed", delivery.pk)
    finally:
        connections.close_all()  # this thread's own connection: threads do not outlive it


# --- recording ---------------------------------------------------------------------------------


def _record(verdicts: list[Verdict], claim: str) -> Counter[str]:
    """Write every verdict of this run whose lease it still holds: delivered, a scheduled
    retry, dead, or postponed; with one attempt row per contact, never a response body."""
    now = timezone.now()
    outcomes: Counter[str] = Counter()
    with transaction.atomic():
        held = {
            row.pk: row
            for row in Delivery.objects.select_for_update().filter(
                pk__in=[v.delivery.pk for v in verdicts], claimed_by=claim
            )
        }
        attempts: list[Attempt] = []
        health: dict[int, list[Result]] = defaultdict(list)
        endpoints = {v.delivery.endpoint_id: v.delivery.endpoint for v in verdicts}
        for verdict in verdicts:
            row = held.get(verdict.delivery.pk)
            if row is None:
                logger.warning("delivery %s: lease lost before recording", verdict.delivery.pk)
                outcomes[LOST] += 1
                continue
            row.claimed_by, row.claimed_until = "", None
            priority = verdict.delivery.message.priority
            if verdict.result is None:
                assert verdict.postpone_until is not None
                row.attempts = max(0, row.attempts - 1)
                _schedule(row, verdict.postpone_until, now, priority=priority)
                outcomes[POSTPONED] += 1
                continue
            result = verdict.result
            if verdict.contacted:
                attempts.append(
                    Attempt(
                        delivery=row,
                        started_at=now - timedelta(milliseconds=result.duration_ms),
                        duration_ms=result.duration_ms,
                        status_code=result.status_code,
                        error_class=result.error_class,
                    )
                )
                if row.endpoint_id is not None:
                    health[row.endpoint_id].append(result)
            outcomes[_apply(row, result, now, priority=priority)] += 1
        _save_grouped(list(held.values()))
        Attempt.objects.bulk_create(attempts)
        for endpoint_id, results in health.items():
            endpoint = endpoints[endpoint_id]
            assert endpoint is not None
            _update_endpoint_health(endpoint, results, now)
    logger.info("deliveries recorded %s", dict(outcomes))
    return outcomes


def _save_grouped(rows: list[Delivery]) -> None:
    """One UPDATE per distinct set of new values: the rows of a batch mostly end alike (all
    delivered at the same moment), and this is far cheaper than a CASE per row and field.
    A delivered or dead row keeps its attempt count and due time as they were (the claim set
    the one, the writer the other), so those are left out of its UPDATE: rows written at
    different moments still share one statement."""
    groups: dict[tuple[tuple[str, object], ...], list[int]] = defaultdict(list)
    for row in rows:
        final = row.state in (DeliveryState.DELIVERED, DeliveryState.DEAD)
        names = FINAL_FIELDS if final else RECORDED_FIELDS
        groups[tuple((name, getattr(row, name)) for name in names)].append(row.pk)
    for values, ids in groups.items():
        Delivery.objects.filter(pk__in=ids).update(**dict(values))


def _apply(row: Delivery, result: Result, now: datetime, *, priority: bool) -> str:
    row.last_status_code = result.status_code
    row.last_error_class = result.error_class
    if result.ok:
        row.state, row.delivered_at, row.enqueued_at = DeliveryState.DELIVERED, now, None
        return SENT
    delay = retry_delay(row.attempts, result, max_attempts=row.max_attempts)
    if delay is None:
        row.state, row.enqueued_at = DeliveryState.DEAD, None
        return DEAD
    row.state = DeliveryState.FAILED
    _schedule(row, now + timedelta(seconds=delay), now, priority=priority)
    return FAILED


def _schedule(row: Delivery, when: datetime, now: datetime, *, priority: bool) -> None:
    """Set the next try. A near one gets a countdown task message now (after commit), in its
    message's lane; a far one is left to the sweeper, which keeps the broker free of day-long
    countdowns."""
    row.next_attempt_at = when
    if (when - now).total_seconds() <= _alerts_setting("SHORT_RETRY_SECONDS"):
        row.enqueued_at = when
        transaction.on_commit(partial(outbox.enqueue_at, row.pk, when, priority=priority))
    else:
        row.enqueued_at = None


# --- the circuit breaker -----------------------------------------------------------------------


def _circuit_wait(endpoint: WebhookEndpoint, now: datetime) -> datetime | None:
    """None if this run may send to the endpoint; else when to try again. While the circuit is
    open nothing is sent; when the pause is over one run (the one that moves the pause on)
    sends a trial and the others wait briefly for its verdict."""
    opened_until = endpoint.circuit_open_until
    if opened_until is None:
        return None
    if opened_until > now:
        return opened_until
    cooldown = timedelta(seconds=_alerts_setting("CIRCUIT_COOLDOWN_SECONDS"))
    won = WebhookEndpoint.objects.filter(pk=endpoint.pk, circuit_open_until=opened_until).update(
        circuit_open_until=now + cooldown
    )
    if won:
        return None
    return now + min(cooldown, timedelta(seconds=60))


def _update_endpoint_health(
    endpoint: WebhookEndpoint, results: list[Result], now: datetime
) -> None:
    """Feed the circuit breaker with this run's attempts at one endpoint (as loaded when the
    run started: a healthy endpoint that stays healthy costs no write)."""
    endpoint_id = endpoint.pk
    if any(r.error_class == "gone" for r in results):
        # 410: the receiver says this endpoint is gone for good.
        disable_webhook_endpoint(endpoint_id=endpoint_id, reason="gone")
    if any(r.ok for r in results):
        if endpoint.consecutive_failures or endpoint.circuit_open_until is not None:
            WebhookEndpoint.objects.filter(pk=endpoint_id).update(
                consecutive_failures=0, circuit_open_until=None
            )
        return
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        consecutive_failures=F("consecutive_failures") + len(results)
    )
    endpoint = WebhookEndpoint.objects.select_related("member").get(pk=endpoint_id)
    threshold = int(settings.PHALANX_ALERTS["CIRCUIT_THRESHOLD"])
    if endpoint.consecutive_failures < threshold:
        return
    cooldown = timedelta(seconds=_alerts_setting("CIRCUIT_COOLDOWN_SECONDS"))
    opened = WebhookEndpoint.objects.filter(pk=endpoint_id, circuit_open_until=None).update(
        circuit_open_until=now + cooldown
    )
    if opened:
        # Only the run that opened the circuit tells the member admins, once per outage.
        _notify_circuit_opened(endpoint, now)
    else:
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(circuit_open_until=now + cooldown)


def _notify_circuit_opened(endpoint: WebhookEndpoint, now: datetime) -> None:
    member: Member = endpoint.member
    logger.warning(
        "webhook endpoint %s: circuit opened after %d failures",
        endpoint.pk,
        endpoint.consecutive_failures,
    )
    outbox.notify(
        member=member,
        event_type=EventType.CIRCUIT_OPENED,
        subject_id=str(endpoint.pk),
        details={
            "endpoint_id": endpoint.pk,
            "url": endpoint.url,
            "failures": endpoint.consecutive_failures,
        },
        dedupe_key=f"circuit:{endpoint.pk}:{int(now.timestamp())}",
        now=now,
    )
