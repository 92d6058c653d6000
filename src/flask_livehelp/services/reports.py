"""The managers' report: chats per day, missed chats, response times and durations."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import math
import statistics
import typing as t

import sqlalchemy as sa

from ..errors import NotAllowed
from ..errors import Refused
from ..formatting import time_zone
from ..i18n import N_
from ..models import OperatorMixin
from . import access
from . import Service
from .history.lists import start_of_day

#: The longest range one report covers.
MAX_DAYS = 366
#: The counted fields of :class:`DayFigures`.
COUNTS = (
    "chats",
    "answered",
    "missed",
    "not_accepted",
    "closed_silent",
    "offline_messages",
)


#: One chat as the reports count it: created, accepted, first answered and
#: ended, status, origin, ended by, reply token, operator and department.
ChatRow: t.TypeAlias = sa.Row[
    dt.datetime,
    dt.datetime | None,
    dt.datetime | None,
    dt.datetime | None,
    str,
    str,
    str | None,
    str | None,
    int | None,
    int | None,
]


@dataclasses.dataclass
class DayFigures:
    day: dt.date
    #: Chats customers started (offline messages not counted).
    chats: int = 0
    #: Chats an operator took.
    answered: int = 0
    #: Chats no operator took (nobody accepted them in time, or given up).
    missed: int = 0
    #: Missed chats nobody accepted in time (the queue's time-out).
    not_accepted: int = 0
    #: Chats an operator had, closed after a long silence.
    closed_silent: int = 0
    #: What the Offline messages page lists: messages left with the offline
    #: form, and missed chats passed on to the shop by mail.
    offline_messages: int = 0


@dataclasses.dataclass
class Spread:
    """The middle and the slow end of some durations, in seconds."""

    count: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, seconds: list[float]) -> Spread:
        if not seconds:
            return cls(0, None, None)
        ordered = sorted(seconds)
        # The nearest-rank 90th percentile: 9 of 10 took at most this long.
        rank = math.ceil(0.9 * len(ordered)) - 1
        return cls(len(ordered), statistics.median(ordered), ordered[rank])


@dataclasses.dataclass
class GroupFigures:
    """The figures of one operator or one department."""

    id: int | None
    name: str
    chats: int
    missed: int
    first_response: Spread
    duration: Spread


@dataclasses.dataclass
class Report:
    date_from: dt.date
    date_to: dt.date
    days: list[DayFigures]
    operators: list[GroupFigures]
    departments: list[GroupFigures]
    totals: DayFigures


class ReportService(Service):
    def figures(
        self,
        viewer: OperatorMixin,
        date_from: dt.date,
        date_to: dt.date,
        *,
        timezone: str | None = None,
        department_id: int | None = None,
    ) -> Report:
        """The report over the chats the viewer oversees, days in their time zone.

        :raises NotAllowed: The viewer is an operator, or may not see the
            department asked for.
        """
        if not access.can_manage(viewer, "report"):
            raise NotAllowed("not-allowed", N_("Only managers and admins see reports."))
        if department_id is not None and not access.oversees(viewer, department_id):
            raise NotAllowed(
                "not-allowed", N_("You may not see the chats of this department.")
            )
        if date_from > date_to:
            raise Refused("bad-dates", N_("The first day is after the last day."))
        if (date_to - date_from).days >= MAX_DAYS:
            raise Refused(
                "too-long", N_("A report covers at most %(num)d days."), num=MAX_DAYS
            )
        zone = time_zone(timezone)
        rows = self._rows(viewer, date_from, date_to, zone, department_id)
        days = self._days(rows, date_from, date_to, zone)
        totals = DayFigures(date_from)
        for field in COUNTS:
            setattr(totals, field, sum(getattr(day, field) for day in days))
        return Report(
            date_from=date_from,
            date_to=date_to,
            days=days,
            operators=self._groups(rows, "operator_id", self._names("operator")),
            departments=self._groups(rows, "department_id", self._names("department")),
            totals=totals,
        )

    def _rows(
        self,
        viewer: OperatorMixin,
        date_from: dt.date,
        date_to: dt.date,
        zone: dt.tzinfo,
        department_id: int | None,
    ) -> list[ChatRow]:
        model = self.models.conversation
        query = sa.select(
            model.created_at,
            model.accepted_at,
            model.first_response_at,
            model.ended_at,
            model.status,
            model.origin,
            model.ended_by,
            model.reply_token,
            model.operator_id,
            model.department_id,
        ).where(
            access.visible_clause(viewer, model),
            model.created_at >= start_of_day(date_from, zone),
            model.created_at < start_of_day(date_to + dt.timedelta(days=1), zone),
        )
        if department_id is not None:
            query = query.where(model.department_id == department_id)
        return list(self.session.execute(query))

    @staticmethod
    def _days(
        rows: list[ChatRow], date_from: dt.date, date_to: dt.date, zone: dt.tzinfo
    ) -> list[DayFigures]:
        days = {
            date_from + dt.timedelta(days=n): DayFigures(
                date_from + dt.timedelta(days=n)
            )
            for n in range((date_to - date_from).days + 1)
        }
        for row in rows:
            figures = days.get(_aware(row.created_at).astimezone(zone).date())
            if figures is None:
                continue
            if row.origin == "offline":
                figures.offline_messages += 1
                continue
            figures.chats += 1
            figures.answered += row.accepted_at is not None
            figures.missed += row.status == "missed"
            figures.not_accepted += row.status == "missed" and row.ended_by == "timeout"
            figures.closed_silent += _closed_after_silence(row)
            # A missed chat with a reply address went to the shop's mailbox.
            figures.offline_messages += (
                row.status == "missed" and row.reply_token is not None
            )
        return list(days.values())

    @staticmethod
    def _groups(
        rows: list[ChatRow], key: str, names: dict[int, str]
    ) -> list[GroupFigures]:
        groups: dict[int | None, list[ChatRow]] = collections.defaultdict(list)
        for row in rows:
            if row.origin != "offline":
                groups[getattr(row, key)].append(row)
        figures = []
        for group_id, members in groups.items():
            if group_id is None and key == "operator_id":
                # Chats nobody took are the departments' figures, not a person's.
                continue
            figures.append(
                GroupFigures(
                    id=group_id,
                    name=names.get(group_id, "") if group_id is not None else "",
                    chats=len(members),
                    missed=sum(row.status == "missed" for row in members),
                    first_response=Spread.of(
                        [
                            _seconds(row.created_at, row.first_response_at)
                            for row in members
                            if row.first_response_at is not None
                        ]
                    ),
                    duration=Spread.of(
                        [
                            _seconds(row.created_at, row.ended_at)
                            for row in members
                            if row.ended_at is not None and row.status == "ended"
                        ]
                    ),
                )
            )
        figures.sort(key=lambda group: (group.id is None, group.name.lower()))
        return figures

    def _names(self, kind: str) -> dict[int, str]:
        model = getattr(self.models, kind)
        return dict(self.session.execute(sa.select(model.id, model.name)).all())


def _closed_after_silence(row: ChatRow) -> bool:
    # Before "inactive", a quiet chat closed was ended by "timeout" too; an
    # operator had it, which a chat nobody accepted never has.
    return bool(
        row.ended_by == "inactive"
        or (row.ended_by == "timeout" and row.status == "ended")
    )


def _aware(moment: dt.datetime) -> dt.datetime:
    # Columns read one by one keep their type, but be safe with raw values.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _seconds(start: dt.datetime, end: dt.datetime) -> float:
    return (_aware(end) - _aware(start)).total_seconds()
