"""Permits: the IOMKI permit lifecycle (DESIGN §1). Pure: no I/O, time is passed in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum


class PermitStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    ISSUED = "ISSUED"
    REJECTED = "REJECTED"
    FROZEN = "FROZEN"
    REVOKED = "REVOKED"


class Action(StrEnum):
    ISSUE = "issue"
    REJECT = "reject"
    FREEZE = "freeze"
    REACTIVATE = "reactivate"
    REVOKE = "revoke"


# The whole lifecycle in one table: from which states each action may be taken, and where it leads.
TRANSITIONS: dict[Action, tuple[frozenset[PermitStatus], PermitStatus]] = {
    Action.ISSUE: (frozenset({PermitStatus.SUBMITTED}), PermitStatus.ISSUED),
    Action.REJECT: (frozenset({PermitStatus.SUBMITTED}), PermitStatus.REJECTED),
    Action.FREEZE: (frozenset({PermitStatus.ISSUED}), PermitStatus.FROZEN),
    Action.REACTIVATE: (frozenset({PermitStatus.FROZEN}), PermitStatus.ISSUED),
    Action.REVOKE: (frozenset({PermitStatus.ISSUED, PermitStatus.FROZEN}), PermitStatus.REVOKED),
}

# SE 3/2021: a revoked company may reapply for the same plant no sooner than 14 days after revocation.
REAPPLY_AFTER_REVOCATION = timedelta(days=14)


class IllegalTransition(Exception):
    def __init__(self, current: PermitStatus, action: Action) -> None:
        super().__init__(f"cannot {action.value} a permit that is {current.value}")
        self.current = current
        self.action = action


@dataclass(frozen=True)
class Transition:
    """One row of a permit's history: what happened, who did it, why, and what caused it."""

    from_status: PermitStatus | None
    to_status: PermitStatus
    action: str
    actor: str
    role: str
    reason: str
    at: datetime
    causation_id: str | None = None


@dataclass(frozen=True)
class Permit:
    permit_id: uuid.UUID
    facility_id: uuid.UUID
    nib: str
    company_name: str
    province_code: str
    regency_code: str
    sector_class: str
    workforce_total: int
    status: PermitStatus
    permit_number: str | None = None
    freeze_count: int = 0
    revoked_at: datetime | None = None

    @classmethod
    def apply(cls, *, facility_id: uuid.UUID, nib: str, company_name: str, province_code: str,
              regency_code: str, sector_class: str, workforce_total: int, actor: str, role: str,
              now: datetime) -> tuple[Permit, Transition]:
        permit = cls(uuid.uuid4(), facility_id, nib, company_name, province_code, regency_code, sector_class,
                     workforce_total, PermitStatus.SUBMITTED)
        return permit, Transition(None, PermitStatus.SUBMITTED, "apply", actor, role, "application submitted", now)

    def act(self, action: Action, *, actor: str, role: str, reason: str, now: datetime,
            permit_number: str | None = None, causation_id: str | None = None) -> tuple[Permit, Transition]:
        allowed_from, target = TRANSITIONS[action]
        if self.status not in allowed_from:
            raise IllegalTransition(self.status, action)
        changed = replace(self, status=target)
        if action is Action.ISSUE:
            if permit_number is None:
                raise ValueError("issuing needs a permit number")
            changed = replace(changed, permit_number=permit_number)
        elif action is Action.FREEZE:
            changed = replace(changed, freeze_count=self.freeze_count + 1)
        elif action is Action.REVOKE:
            changed = replace(changed, revoked_at=now)
        return changed, Transition(self.status, target, action.value, actor, role, reason, now, causation_id)

    @property
    def reapply_after(self) -> date | None:
        return (self.revoked_at + REAPPLY_AFTER_REVOCATION).date() if self.revoked_at else None


def permit_number(year: int, sequence: int) -> str:
    return f"IOMKI-{year}-{sequence:06d}"
