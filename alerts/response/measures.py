"""How protected the community is: per activation and overall.

Shares of members that acknowledged, assessed and mitigated; median and 90th percentile of the
time from notification to acknowledgement and to mitigation; members still unprotected. A
member counts as protected once it mitigated, assessed itself as not affected, or pulled the
activation's indicators into its defences (a deployment receipt). Only aggregates leave this
module: no member is named. Drills are measured on their own and never enter the overall
figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .choices import TaskState
from .models import Activation, ResponseTask

OVERALL_DAYS_DEFAULT = 90


@dataclass(frozen=True)
class Measures:
    members: int
    acknowledged: int
    assessed: int
    affected: int
    likely_affected: int
    needs_help: int
    mitigated: int
    deployed: int
    protected: int
    unprotected: int
    acknowledged_share: float
    assessed_share: float
    mitigated_share: float
    protected_share: float
    time_to_acknowledge_median_s: float | None
    time_to_acknowledge_p90_s: float | None
    time_to_mitigate_median_s: float | None
    time_to_mitigate_p90_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least pct% at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _seconds(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else max(0.0, (later - earlier).total_seconds())


def compute(tasks: QuerySet[ResponseTask]) -> Measures:
    rows = tasks.values_list(
        "state",
        "affected",
        "likely_affected",
        "notified_at",
        "acknowledged_at",
        "assessed_at",
        "mitigated_at",
        "deployed_at",
    )
    return _from_rows(rows)


def _from_rows(rows: Iterable[tuple[Any, ...]]) -> Measures:
    members = acknowledged = assessed = affected = likely = needs_help = 0
    mitigated = deployed = protected = 0
    to_ack: list[float] = []
    to_mitigate: list[float] = []
    for (
        state,
        is_affected,
        likely_affected,
        notified,
        acked,
        assessed_at,
        mitigated_at,
        deployed_at,
    ) in rows:
        members += 1
        acknowledged += acked is not None
        assessed += assessed_at is not None
        affected += is_affected is True
        likely += bool(likely_affected)
        needs_help += state == TaskState.NEEDS_HELP
        mitigated += mitigated_at is not None
        deployed += deployed_at is not None
        protected += (
            mitigated_at is not None
            or deployed_at is not None
            or (assessed_at is not None and is_affected is False)
        )
        for bucket, moment in ((to_ack, acked), (to_mitigate, mitigated_at)):
            seconds = _seconds(moment, notified)
            if seconds is not None:
                bucket.append(seconds)
    return Measures(
        members=members,
        acknowledged=acknowledged,
        assessed=assessed,
        affected=affected,
        likely_affected=likely,
        needs_help=needs_help,
        mitigated=mitigated,
        deployed=deployed,
        protected=protected,
        unprotected=members - protected,
        acknowledged_share=_share(acknowledged, members),
        assessed_share=_share(assessed, members),
        mitigated_share=_share(mitigated, members),
        protected_share=_share(protected, members),
        time_to_acknowledge_median_s=percentile(to_ack, 50),
        time_to_acknowledge_p90_s=percentile(to_ack, 90),
        time_to_mitigate_median_s=percentile(to_mitigate, 50),
        time_to_mitigate_p90_s=percentile(to_mitigate, 90),
    )


def for_activation(activation: Activation) -> Measures:
    return compute(ResponseTask.objects.filter(activation=activation))


def overall(*, activations: QuerySet[Activation], since: datetime | None = None) -> Measures:
    """Pooled over the given activations' tasks, drills always left out."""
    since = since or timezone.now() - timedelta(days=OVERALL_DAYS_DEFAULT)
    chosen = activations.filter(is_drill=False, declared_at__gte=since)
    return compute(ResponseTask.objects.filter(activation__in=chosen.values("id")))
