"""A plant's class over the handlers, in memory: read from the table when the company applies, the company's claim of
another class put in review, and the operator's decision on it, announced when the permit operates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.permits.domain import (
    Action, ClassReviewNotFound, Classing, InvalidApplication, ReviewAlreadyDecided, ReviewDecision, ReviewOrigin,
    ReviewStatus,
)
from services.permits.handlers import PermitHandlers, SectorHandlers
from shared.clock import FakeClock
from shared.contract import ClassBasis, SectorClass
from shared.web.access import Access, Principal, Role, Scope
from tests.support.in_memory_permits import InMemoryPermitsDatabase, permit_handlers, published
from tests.support.permit_factories import an_application

pytestmark = pytest.mark.unit

T0 = datetime(2021, 7, 21, 2, 0, tzinfo=UTC)
NIB = an_application().nib
OPERATOR = Access(Principal("officer-ani", Role.OPERATOR), Scope.ALL, "decide_class_review")
COMPANY = Access(Principal("k3-admin", Role.COMPANY, nib=NIB), Scope.OWN, "apply")
# A garment maker's principal activity: the table reads it essential and export-oriented (Inmendagri 22/2021).
GARMENTS = ["14111", "24101"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def database() -> InMemoryPermitsDatabase:
    return InMemoryPermitsDatabase()


@pytest.fixture
def handlers(database: InMemoryPermitsDatabase, clock: FakeClock) -> PermitHandlers:
    return permit_handlers(database, clock)


@pytest.fixture
def sectors(database: InMemoryPermitsDatabase, clock: FakeClock, handlers: PermitHandlers) -> SectorHandlers:
    return SectorHandlers(database, clock, handlers.activity)  # type: ignore[arg-type]


async def test_without_a_claim_the_plant_has_the_tables_class_and_nothing_waits_for_review(handlers, database):
    permit = await handlers.apply(an_application(kbli=GARMENTS, sector_class=None), COMPANY)

    assert (permit.sector_class, permit.export_oriented, permit.class_basis) == (
        "essential", True, ClassBasis.KBLI_TABLE)
    assert database.committed.class_reviews == {}
    applied = database.committed.outbox[0]
    assert (applied.data["sector_class"], applied.data["export_oriented"]) == ("essential", True)
    view = await handlers.get(permit.permit_id, COMPANY)
    assert (view.table_version, view.open_review) == ("2021.1", None)


async def test_a_claim_that_is_the_tables_reading_needs_no_review(handlers, database):
    await handlers.apply(an_application(kbli=GARMENTS, sector_class="essential", export_oriented=True), COMPANY)
    await handlers.apply(an_application(kbli=GARMENTS, sector_class="essential", address="Jl. Lain 2"), COMPANY)
    assert database.committed.class_reviews == {}


async def test_a_claim_of_another_class_is_reviewed_and_the_tables_class_applies_meanwhile(handlers, database):
    permit = await handlers.apply(an_application(kbli=GARMENTS, sector_class="critical"), COMPANY)

    assert (permit.sector_class, permit.export_oriented) == ("essential", True)
    [review] = database.committed.class_reviews.values()
    assert (review.permit_id, review.status, review.origin, review.opened_by, review.opened_at) == (
        permit.permit_id, ReviewStatus.PENDING, ReviewOrigin.APPLICATION, "k3-admin", T0)
    # What the company did not claim (its export orientation) is the table's.
    assert (review.claimed, review.derived) == (Classing(SectorClass.CRITICAL, True),
                                                Classing(SectorClass.ESSENTIAL, True))
    assert database.committed.outbox[0].data["sector_class"] == "essential"  # the class in force
    assert (await handlers.get(permit.permit_id, COMPANY)).open_review == review


async def test_a_claim_of_export_orientation_alone_is_a_claim_too(handlers, database):
    await handlers.apply(an_application(kbli=["24101"], sector_class=None, export_oriented=True), COMPANY)
    [review] = database.committed.class_reviews.values()
    assert review.claimed == Classing(SectorClass.NON_ESSENTIAL, True)


async def test_a_claim_of_no_known_class_is_refused_naming_the_field(handlers, database):
    with pytest.raises(InvalidApplication) as refused:
        await handlers.apply(an_application(sector_class="vital"), COMPANY)
    assert [e.field for e in refused.value.errors] == ["sector_class"]
    assert database.committed.permits == {}


async def test_an_accepted_claim_on_an_issued_permit_changes_its_class_and_is_announced(
        handlers, sectors, database, clock):
    applied = await handlers.apply(an_application(kbli=GARMENTS, sector_class="critical", export_oriented=False),
                                   COMPANY)
    issued = await handlers.act(applied.permit_id, Action.ISSUE, "lengkap", OPERATOR)
    assert database.committed.outbox[-1].data["sector_class"] == "essential"  # PermitIssued: the class in force
    assert database.committed.outbox[-1].data["export_oriented"] is True
    [review] = database.committed.class_reviews.values()

    decided, permit = await sectors.decide(review.review_id, ReviewDecision.ACCEPT, "pemasok rumah sakit", OPERATOR,
                                           "req-7")

    assert decided.status is ReviewStatus.ACCEPTED and decided.decided_by == "officer-ani"
    assert (permit.sector_class, permit.export_oriented, permit.class_basis, permit.class_table_version) == (
        "critical", False, ClassBasis.OPERATOR, "2021.1")
    assert database.committed.permits[issued.permit_id] == permit
    changed = database.committed.outbox[-1]
    assert changed.type == "iomki.SectorClassChanged.v1" and changed.correlationid == "req-7"
    assert {k: changed.data[k] for k in ("permit_number", "sector_class", "export_oriented", "basis",
                                         "table_version")} == {
        "permit_number": issued.permit_number, "sector_class": "critical", "export_oriented": False,
        "basis": "operator", "table_version": "2021.1"}
    assert str(review.review_id) in changed.data["reason"] and "pemasok rumah sakit" in changed.data["reason"]
    view = await handlers.get(permit.permit_id, OPERATOR)
    assert (view.open_review, view.table_version) == (None, "2021.1")


async def test_an_accepted_claim_on_an_application_is_not_announced_until_it_is_issued(handlers, sectors, database):
    applied = await handlers.apply(an_application(kbli=GARMENTS, sector_class="critical"), COMPANY)
    [review] = database.committed.class_reviews.values()
    await sectors.decide(review.review_id, ReviewDecision.ACCEPT, "diterima", OPERATOR)
    assert published(database) == ["PermitApplied", "CompanyContactsUpdated"]

    await handlers.act(applied.permit_id, Action.ISSUE, "lengkap", OPERATOR)
    issued = database.committed.outbox[-1]
    assert (issued.type, issued.data["sector_class"], issued.data["export_oriented"]) == (
        "iomki.PermitIssued.v1", "critical", True)


async def test_a_rejected_claim_leaves_the_tables_class_and_announces_nothing(handlers, sectors, database):
    applied = await handlers.apply(an_application(kbli=GARMENTS, sector_class="critical"), COMPANY)
    await handlers.act(applied.permit_id, Action.ISSUE, "lengkap", OPERATOR)
    [review] = database.committed.class_reviews.values()
    before = len(database.committed.outbox)

    decided, permit = await sectors.decide(review.review_id, ReviewDecision.REJECT, "KBLI utama garmen", OPERATOR)

    assert decided.status is ReviewStatus.REJECTED and decided.decision_reason == "KBLI utama garmen"
    assert (permit.sector_class, permit.class_basis) == ("essential", ClassBasis.KBLI_TABLE)
    assert len(database.committed.outbox) == before
    with pytest.raises(ReviewAlreadyDecided) as again:
        await sectors.decide(review.review_id, ReviewDecision.ACCEPT, "berubah pikiran", OPERATOR)
    assert again.value.review.status is ReviewStatus.REJECTED
    assert database.committed.class_reviews[review.review_id] == decided


async def test_an_unknown_review_is_not_found(sectors):
    with pytest.raises(ClassReviewNotFound):
        await sectors.decide(uuid.uuid4(), ReviewDecision.ACCEPT, "ok", OPERATOR)
