"""Reactivation on conditions through the permits handlers, over an in-memory unit of work: a plant frozen by the
ladder, the reports it files late arriving as ReportSubmitted, its request refused until every condition is met, then
filed, decided once by an operator, and announced. The same over the real database and broker:
tests/integration/test_permits_reactivation.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.permits.domain import (
    Action, Decision, InvalidGround, Permit, PermitNotFound, PermitStatus,
    ReactivationRefused, ReactivationRequestNotFound, RequestAlreadyDecided, RequestStatus,
)
from services.permits.handlers import PermitHandlers
from shared.clock import FakeClock
from shared.contract import (
    Decoded, Envelope, GroundCode, GroundEvidence, ReportSubmitted, SanctionAction, SanctionEvidence, SanctionGround,
    SanctionRecommended,
)
from shared.web.access import Access, Principal, Role, Scope
from tests.support.in_memory_permits import InMemoryPermitsDatabase, permit_handlers
from tests.support.permit_factories import an_application

pytestmark = pytest.mark.unit

T0 = datetime(2021, 8, 2, 8, 0, tzinfo=UTC)
NIB = an_application().nib
OPERATOR = Access(Principal("officer-ani", Role.OPERATOR), Scope.ALL, "decide_reactivation")
COMPANY = Access(Principal("k3-admin", Role.COMPANY, nib=NIB), Scope.OWN, "request_reactivation")
COMPETITOR = Access(Principal("k3-lain", Role.COMPANY, nib="8120000999999"), Scope.OWN, "request_reactivation")
STATEMENT = ("Petugas K3 khusus pelaporan ditunjuk; pengingat dipasang setiap Selasa dan Jumat pukul 17.00 agar "
             "laporan IOMKI tidak terlewat lagi.")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def database() -> InMemoryPermitsDatabase:
    return InMemoryPermitsDatabase()


@pytest.fixture
def handlers(database: InMemoryPermitsDatabase, clock: FakeClock) -> PermitHandlers:
    return permit_handlers(database, clock)


async def frozen_by_the_ladder(handlers: PermitHandlers, database: InMemoryPermitsDatabase,
                               ) -> tuple[Permit, list[uuid.UUID]]:
    """A permit the reports ladder froze on three missed periods, and those periods."""
    applied = await handlers.apply(an_application(), COMPANY)
    permit = await handlers.act(applied.permit_id, Action.ISSUE, "documents complete", OPERATOR)
    missed = [uuid.uuid4() for _ in range(3)]
    freeze = SanctionRecommended(
        facility_id=permit.facility_id, province_code=permit.province_code, regency_code=permit.regency_code,
        permit_id=permit.permit_id, action=SanctionAction.FREEZE, rule="ThreeWarningsInARow", ladder="SE-3/2021",
        evidence=SanctionEvidence(missed_periods=missed, warnings=[uuid.uuid4() for _ in range(3)]))
    async with database.transaction() as work:
        await handlers.on_sanction_recommended(work, Envelope.wrap(freeze, service="reports"), freeze)
    assert database.committed.permits[permit.permit_id].status is PermitStatus.FROZEN
    return database.committed.permits[permit.permit_id], missed


def submitted(permit: Permit, period_id: uuid.UUID, *, declared: bool = True,
              report_id: uuid.UUID | None = None) -> Decoded:
    event = ReportSubmitted(
        facility_id=permit.facility_id, province_code=permit.province_code, regency_code=permit.regency_code,
        permit_id=permit.permit_id, report_id=report_id or uuid.uuid4(), period_id=period_id,
        period_starts_at=T0 - timedelta(days=7), deadline=T0 - timedelta(days=3), late=True, workforce_total=1200,
        on_site_total=900, odp=0, pdp=0, confirmed_positive=0, tests_pcr=0, tests_antigen=0, vaccinated_dose1=0,
        vaccinated_dose2=0, vaccinated_booster=0, declared=declared)
    return Decoded(Envelope.wrap(event, service="reports", time=T0 + timedelta(hours=1)), event)


async def files(handlers: PermitHandlers, database: InMemoryPermitsDatabase, *reports: Decoded) -> None:
    """Reports as the consumer hands a run of them to the batch handler, in one transaction."""
    async with database.transaction() as work:
        await handlers.on_reports_submitted(work, list(reports))


async def test_a_frozen_company_files_its_missed_reports_then_asks_and_its_request_waits_for_review(
        handlers, database):
    permit, missed = await frozen_by_the_ladder(handlers, database)
    written = database.committed

    # Asked at once: the three reports are owed first, each named.
    with pytest.raises(ReactivationRefused) as refused:
        await handlers.request_reactivation(permit.permit_id, STATEMENT, COMPANY)
    assert [c.condition for c in refused.value.unmet] == ["MissedReportsFiled"]
    assert refused.value.unmet[0].missing_periods == tuple(missed)
    assert not refused.value.about_the_request_only
    assert database.committed == written  # a refusal writes nothing

    # Two filed late: the third is still named.
    await files(handlers, database, submitted(permit, missed[0]), submitted(permit, missed[1]))
    with pytest.raises(ReactivationRefused) as refused:
        await handlers.request_reactivation(permit.permit_id, STATEMENT, COMPANY)
    assert refused.value.unmet[0].missing_periods == (missed[2],)

    standing = await handlers.reactivation_standing(permit.permit_id, COMPANY, 10)
    assert [(c.condition, c.met) for c in standing.outlook] == [
        ("PermitIsFrozen", True), ("MissedReportsFiled", False), ("OneOpenRequestAtATime", True)]
    assert standing.requests == []

    # All three filed, a statement made: filed, and announced with the periods it rests on.
    await files(handlers, database, submitted(permit, missed[2]))
    request = await handlers.request_reactivation(permit.permit_id, STATEMENT, COMPANY, "req-42")
    assert request.status is RequestStatus.PENDING and request.missed_periods == tuple(missed)
    assert request.requested_by == "k3-admin" and request.requested_at == T0
    requested = database.committed.outbox[-1]
    assert requested.type == "iomki.ReactivationRequested.v1" and requested.correlationid == "req-42"
    assert requested.data["request_id"] == str(request.request_id)
    assert requested.data["missed_periods"] == [str(p) for p in missed]
    assert requested.data["permit_number"] == permit.permit_number
    assert "corrective_action" not in requested.data and STATEMENT not in requested.to_bytes().decode()

    standing = await handlers.reactivation_standing(permit.permit_id, COMPANY, 10)
    assert [r.request_id for r in standing.requests] == [request.request_id]
    assert [(c.condition, c.met, c.open_request) for c in standing.outlook][-1] == (
        "OneOpenRequestAtATime", False, request.request_id)
    # The permit stays frozen until an operator decides.
    assert database.committed.permits[permit.permit_id].status is PermitStatus.FROZEN

    # One request at a time.
    with pytest.raises(ReactivationRefused) as refused:
        await handlers.request_reactivation(permit.permit_id, STATEMENT, COMPANY)
    assert [(c.condition, c.open_request) for c in refused.value.unmet] == [("OneOpenRequestAtATime",
                                                                              request.request_id)]


async def test_a_statement_too_short_is_refused_as_a_bad_request(handlers, database):
    permit, missed = await frozen_by_the_ladder(handlers, database)
    await files(handlers, database, *(submitted(permit, p) for p in missed))
    with pytest.raises(ReactivationRefused) as refused:
        await handlers.request_reactivation(permit.permit_id, "sudah diperbaiki", COMPANY)
    assert [c.condition for c in refused.value.unmet] == ["CorrectiveActionStated"]
    assert refused.value.about_the_request_only
    assert database.committed.reactivations == {}


async def test_approval_reactivates_the_permit_and_excuses_the_periods_filed_late(handlers, database, clock):
    permit, missed = await frozen_by_the_ladder(handlers, database)
    await files(handlers, database, *(submitted(permit, p) for p in missed))
    request = await handlers.request_reactivation(permit.permit_id, STATEMENT, COMPANY)
    clock.advance(timedelta(days=1))

    decided, reactivated = await handlers.decide_reactivation(request.request_id, Decision.APPROVE,
                                                              "laporan lengkap dan tindakan memadai", OPERATOR,
                                                              "req-7")

    assert decided.status is RequestStatus.APPROVED and reactivated.status is PermitStatus.ISSUED
    assert (decided.decided_by, decided.decided_at) == ("officer-ani", T0 + timedelta(days=1))
    event = database.committed.outbox[-1]
    assert event.type == "iomki.PermitReactivated.v1" and event.correlationid == "req-7"
    assert event.data["request_id"] == str(request.request_id)
    assert event.data["excused_periods"] == [str(p) for p in missed]
    step = (await handlers.history(permit.permit_id, OPERATOR))[-1]
    assert (step["action"], step["from_status"], step["to_status"], step["actor"], step["role"]) == (
        "reactivate", "FROZEN", "ISSUED", "officer-ani", "operator")
    assert str(request.request_id) in step["reason"] and step["causation_id"] == "req-7"

    # Decided once: a second decision, either way, changes nothing.
    after = database.committed
    for decision in Decision:
        with pytest.raises(RequestAlreadyDecided):
            await handlers.decide_reactivation(request.request_id, decision, "lagi", OPERATOR)
    assert database.committed == after
    standing = await handlers.reactivation_standing(permit.permit_id, COMPANY, 10)
    assert standing.requests[0].status is RequestStatus.APPROVED
    assert [c.condition for c in standing.outlook if not c.met] == ["PermitIsFrozen"]


async def test_a_rejection_keeps_the_permit_frozen_and_the_company_may_ask_again(handlers, database):
    permit, missed = await frozen_by_the_ladder(handlers, database)
    await files(handlers, database, *(submitted(permit, p) for p in missed))
    first = await handlers.request_reactivation(permit.permit_id, STATEMENT, COMPANY)

    decided, still = await handlers.decide_reactivation(first.request_id, Decision.REJECT,
                                                        "tindakan perbaikan belum dilaksanakan", OPERATOR)

    assert decided.status is RequestStatus.REJECTED and still.status is PermitStatus.FROZEN
    rejected = database.committed.outbox[-1]
    assert rejected.type == "iomki.ReactivationRejected.v1"
    assert (rejected.data["request_id"], rejected.data["reason"]) == (str(first.request_id),
                                                                      "tindakan perbaikan belum dilaksanakan")
    assert [t.action for t in database.committed.history[permit.permit_id]][-1] == "freeze"
    second = await handlers.request_reactivation(permit.permit_id, STATEMENT + " Pelatihan ulang staf.", COMPANY)
    standing = await handlers.reactivation_standing(permit.permit_id, COMPANY, 10)
    assert [(r.request_id, r.status) for r in standing.requests] == [
        (second.request_id, RequestStatus.PENDING), (first.request_id, RequestStatus.REJECTED)]


async def test_a_freeze_on_another_ground_owes_no_report(handlers, database):
    applied = await handlers.apply(an_application(), COMPANY)
    await handlers.act(applied.permit_id, Action.ISSUE, "ok", OPERATOR)
    finding = SanctionGround(code=GroundCode.INSPECTION_FINDING, text="masker tidak dipakai",
                             evidence=GroundEvidence(finding="BAP-32.16/2021/017"))
    await handlers.act(applied.permit_id, Action.FREEZE, "masker tidak dipakai", OPERATOR, ground=finding)

    request = await handlers.request_reactivation(applied.permit_id, STATEMENT, COMPANY)

    assert request.missed_periods == ()
    assert [(c.condition, c.met) for c in request.conditions][1] == ("MissedReportsFiled", True)


@pytest.mark.parametrize("action", [Action.REACTIVATE, Action.REVOKE])
async def test_a_pending_request_lapses_when_the_permit_leaves_the_freeze_another_way(handlers, database, action):
    permit, missed = await frozen_by_the_ladder(handlers, database)
    await files(handlers, database, *(submitted(permit, p) for p in missed))
    request = await handlers.request_reactivation(permit.permit_id, STATEMENT, COMPANY)
    ground = SanctionGround(code=GroundCode.COMPANY_REQUEST, text="izin dikembalikan") if action is Action.REVOKE \
        else None
    await handlers.act(permit.permit_id, action, "keputusan langsung", OPERATOR, ground=ground)  # still possible

    # Closed as rejected by the officer who moved the permit, saying why, caused by that decision's event.
    moved, lapsed = database.committed.outbox[-2:]
    assert lapsed.type == "iomki.ReactivationRejected.v1" and lapsed.causationid == str(moved.id)
    assert lapsed.data["request_id"] == str(request.request_id) and "no longer frozen" in lapsed.data["reason"]
    standing = await handlers.reactivation_standing(permit.permit_id, COMPANY, 10)
    [closed] = standing.requests
    assert (closed.status, closed.decided_by) == (RequestStatus.REJECTED, "officer-ani")
    after = database.committed
    with pytest.raises(RequestAlreadyDecided):
        await handlers.decide_reactivation(request.request_id, Decision.APPROVE, "ok", OPERATOR)
    assert database.committed == after


async def test_another_company_and_an_unknown_request_find_nothing(handlers, database):
    permit, missed = await frozen_by_the_ladder(handlers, database)
    with pytest.raises(PermitNotFound):
        await handlers.request_reactivation(permit.permit_id, STATEMENT, COMPETITOR)
    with pytest.raises(PermitNotFound):
        await handlers.reactivation_standing(permit.permit_id, COMPETITOR, 10)
    with pytest.raises(ReactivationRequestNotFound):
        await handlers.decide_reactivation(uuid.uuid4(), Decision.APPROVE, "ok", OPERATOR)


async def test_each_report_is_kept_once_and_a_declared_one_grounds_a_false_declaration(handlers, database):
    permit, _ = await frozen_by_the_ladder(handlers, database)
    await handlers.act(permit.permit_id, Action.REACTIVATE, "diaktifkan", OPERATOR)
    declared, undeclared = submitted(permit, uuid.uuid4()), submitted(permit, uuid.uuid4(), declared=False)
    await files(handlers, database, declared, undeclared, declared)  # redelivered within the run
    await files(handlers, database, declared)  # and in a later one
    assert len(database.committed.reports_filed) == 2
    kept = database.committed.reports_filed[declared.event.report_id]  # type: ignore[attr-defined]
    assert (kept.permit_id, kept.late, kept.declared, kept.at) == (permit.permit_id, True, True,
                                                                   declared.envelope.time)

    def contradicted(report: Decoded) -> SanctionGround:
        return SanctionGround(code=GroundCode.FALSE_DECLARATION, text="jumlah pekerja di lokasi tidak sesuai",
                              evidence=GroundEvidence(report_id=report.event.report_id,  # type: ignore[attr-defined]
                                                      finding="BAP-32.16/2021/020"))

    with pytest.raises(InvalidGround) as refused:
        await handlers.act(permit.permit_id, Action.FREEZE, "data tidak benar", OPERATOR,
                           ground=contradicted(undeclared))
    assert [e.field for e in refused.value.errors] == ["ground.evidence.report_id"]
    frozen = await handlers.act(permit.permit_id, Action.FREEZE, "data tidak benar", OPERATOR,
                                ground=contradicted(declared))
    assert frozen.status is PermitStatus.FROZEN
