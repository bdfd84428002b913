"""The permits handlers' orchestration over an in-memory unit of work: what each command and consumed event
writes, which events it adds to the outbox and with what causation, what a refusal leaves behind (nothing), and
that a recommendation handled twice changes the permit once. The same handlers against the real database and
broker: tests/integration/test_permits_api.py."""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.permits.domain import (
    SANCTIONS, Action, IllegalTransition, InvalidApplication, InvalidGround, LetterGround,
    LetterNotFound, Permit, PermitNotFound, PermitStatus, PlantAlreadyPermitted, ReapplyTooSoon, RegistryStatus,
)
from services.permits.handlers import PermitHandlers
from shared import registry_tokens
from shared.clock import FakeClock
from shared.contract import (
    EVENT_TYPES, INTERNAL_CONTACTS, PERMITS, ClosureScope, Envelope, Event, FacilityClosureOrdered, FacilityReopened,
    GroundCode, GroundEvidence, LetterKind, SanctionAction, SanctionEvidence, SanctionGround, SanctionRecommended,
    WarningIssued,
)
from shared.web.access import Access, Principal, Role, Scope
from tests.support.in_memory_permits import InMemoryPermitsDatabase, PermitsState, permit_handlers, published
from tests.support.permit_factories import an_application

pytestmark = pytest.mark.unit

T0 = datetime(2021, 7, 5, 8, 0, tzinfo=UTC)
NIB = an_application().nib
OPERATOR = Access(Principal("officer-ani", Role.OPERATOR), Scope.ALL, "decide")
COMPANY = Access(Principal("k3-admin", Role.COMPANY, nib=NIB), Scope.OWN, "apply")
ANOTHER_PLANT = "Jl. Raya Bekasi Km 28, Cikarang"
FINDING = SanctionGround(code=GroundCode.INSPECTION_FINDING, text="masker tidak dipakai di lini 2",
                         evidence=GroundEvidence(finding="BAP-32.16/2021/017"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def database() -> InMemoryPermitsDatabase:
    return InMemoryPermitsDatabase()


@pytest.fixture
def handlers(database: InMemoryPermitsDatabase, clock: FakeClock) -> PermitHandlers:
    return permit_handlers(database, clock)


async def consumed(database: InMemoryPermitsDatabase, handler, event: Event, *, service: str) -> Envelope:
    """`event` as the consumer hands it to its handler: in an envelope, in one transaction (the inbox that skips
    a redelivery is the consumer's, not the handler's)."""
    envelope = Envelope.wrap(event, service=service)
    async with database.transaction() as work:
        await handler(work, envelope, event)
    return envelope


async def an_issued_permit(handlers: PermitHandlers) -> Permit:
    applied = await handlers.apply(an_application(), COMPANY)
    return await handlers.act(applied.permit_id, Action.ISSUE, "documents complete", OPERATOR)


def recommended(permit: Permit, action: SanctionAction) -> SanctionRecommended:
    return SanctionRecommended(
        facility_id=permit.facility_id, province_code=permit.province_code, regency_code=permit.regency_code,
        permit_id=permit.permit_id, action=action, rule="ThreeWarningsInARow",
        evidence=SanctionEvidence(missed_periods=[uuid.uuid4() for _ in range(3)],
                                  warnings=[uuid.uuid4() for _ in range(3)]))


# -- applications -------------------------------------------------------------------------------------------


async def test_an_application_is_kept_and_announced_with_the_contacts_only_on_the_internal_topic(handlers, database):
    permit = await handlers.apply(an_application(contact_email="k3@baja.example", contact_phone="+62218900000"),
                                  COMPANY)

    assert permit.status is PermitStatus.SUBMITTED
    applied, contacts = database.committed.outbox
    assert (applied.type, contacts.type) == ("iomki.PermitApplied.v1", "iomki.CompanyContactsUpdated.v1")
    assert applied.key == contacts.key == str(permit.facility_id).encode()
    assert applied.time == contacts.time == T0
    assert applied.data["facility_name"] == "Pabrik Cibitung" and applied.data["kbli"] == ["24101"]
    # Company contact details travel on the internal topic only, never on the public one agencies read.
    assert EVENT_TYPES[applied.type].topic is PERMITS and EVENT_TYPES[contacts.type].topic is INTERNAL_CONTACTS
    assert (contacts.data["email"], contacts.data["phone"]) == ("k3@baja.example", "+62218900000")
    assert b"k3@baja.example" not in applied.to_bytes() and b"+62218900000" not in applied.to_bytes()
    # One decision: the contacts are caused by the application.
    assert contacts.causationid == str(applied.id) and contacts.correlationid == applied.correlationid

    history = await handlers.history(permit.permit_id, OPERATOR)
    assert [(h["action"], h["to_status"], h["actor"], h["role"]) for h in history] == [
        ("apply", "SUBMITTED", "k3-admin", "company")]
    assert (await handlers.get(permit.permit_id, COMPANY)).application["address"] == "Kawasan MM2100, Cibitung"


async def test_an_invalid_application_is_refused_and_nothing_is_written(handlers, database):
    with pytest.raises(InvalidApplication) as refused:
        await handlers.apply(an_application(nib="81200", regency_code="33.16"), COMPANY)

    assert {error.field for error in refused.value.errors} == {"company.nib", "facility.regency_code"}
    assert database.committed == PermitsState()


async def test_a_second_application_for_the_plant_is_refused_naming_the_permit_it_has(handlers, database):
    first = await handlers.apply(an_application(), COMPANY)
    written = list(database.committed.outbox)

    with pytest.raises(PlantAlreadyPermitted) as refused:
        # However the address is typed, it is the same plant.
        await handlers.apply(an_application(address="KAWASAN MM2100 - Cibitung", company_name="PT Lain"), COMPANY)

    assert refused.value.existing.permit_id == first.permit_id
    assert list(database.committed.permits) == [first.permit_id]
    assert database.committed.outbox == written


async def test_a_revoked_plant_reapplies_after_fourteen_days_as_the_same_facility(handlers, database, clock):
    first = await an_issued_permit(handlers)
    await handlers.act(first.permit_id, Action.REVOKE, "statement contradicted by inspection", OPERATOR,
                       ground=FINDING)

    clock.advance(timedelta(days=13))
    with pytest.raises(ReapplyTooSoon):
        await handlers.apply(an_application(), COMPANY)
    clock.advance(timedelta(days=1))
    second = await handlers.apply(an_application(), COMPANY)

    # Reports and incidents keep following the plant under its facility id.
    assert second.permit_id != first.permit_id and second.facility_id == first.facility_id
    reapplied = database.committed.outbox[-2]
    assert reapplied.type == "iomki.PermitApplied.v1" and reapplied.data["permit_id"] == str(second.permit_id)
    assert reapplied.subject == str(first.facility_id)


# -- an officer's decisions ---------------------------------------------------------------------------------


async def test_each_decision_is_announced_in_order_with_the_permit_as_it_now_is(handlers, database, clock):
    permit = await handlers.apply(an_application(), COMPANY)
    for action in (Action.ISSUE, Action.FREEZE, Action.REACTIVATE, Action.REVOKE):
        clock.advance(timedelta(days=1))
        await handlers.act(permit.permit_id, action, f"officer's {action.value}", OPERATOR,
                           ground=FINDING if action in SANCTIONS else None)

    assert published(database) == ["PermitApplied", "CompanyContactsUpdated", "PermitIssued", "PermitFrozen",
                                   "PermitReactivated", "PermitRevoked"]
    issued, frozen, reactivated, revoked = database.committed.outbox[2:]
    assert issued.data["permit_number"] == "IOMKI-2021-000001"
    assert datetime.fromisoformat(issued.data["issued_at"]) == T0 + timedelta(days=1)
    assert frozen.data["freeze_count"] == 1 and frozen.data["reason"] == "officer's freeze"
    assert frozen.data["ground"]["code"] == revoked.data["ground"]["code"] == "inspection_finding"
    assert revoked.data["ground"]["evidence"]["finding"] == "BAP-32.16/2021/017"
    assert reactivated.data["permit_number"] == "IOMKI-2021-000001"
    assert date.fromisoformat(revoked.data["reapply_after"]) == (T0 + timedelta(days=4 + 14)).date()
    # Each decision is a request of its own: its own correlation, not the application's.
    correlations = {envelope.correlationid for envelope in (issued, frozen, reactivated, revoked)}
    assert len(correlations) == 4 and database.committed.outbox[0].correlationid not in correlations
    history = await handlers.history(permit.permit_id, OPERATOR)
    assert [h["to_status"] for h in history] == ["SUBMITTED", "ISSUED", "FROZEN", "ISSUED", "REVOKED"]
    assert [h["ground"]["code"] if h["ground"] else None for h in history] == [
        None, None, "inspection_finding", None, "inspection_finding"]


async def test_a_ground_that_does_not_rest_on_its_evidence_is_refused_and_changes_nothing(handlers, database):
    permit = await an_issued_permit(handlers)
    other = await handlers.apply(an_application(address=ANOTHER_PLANT), COMPANY)
    elsewhere = FacilityClosureOrdered(facility_id=other.facility_id, province_code="32", regency_code="32.16",
                                       closure_id=uuid.uuid4(), scope=ClosureScope.PLANT, reason="klaster",
                                       starts_at=T0, ends_at=T0 + timedelta(days=5))
    await consumed(database, handlers.on_closure_ordered, elsewhere, service="incidents")
    written = list(database.committed.outbox)
    refused_grounds = {
        "ground.code": SanctionGround(code=GroundCode.MISSED_REPORTS, text="tiga laporan terlewat berturut-turut"),
        "ground.evidence.closure_id": SanctionGround(code=GroundCode.CLOSURE_NOT_OBSERVED,
                                                     text="beroperasi saat ditutup",
                                                     evidence=GroundEvidence(closure_id=elsewhere.closure_id)),
        "ground.evidence.finding": SanctionGround(code=GroundCode.INSPECTION_FINDING, text="protokol dilanggar"),
        "reason": SanctionGround(code=GroundCode.OTHER, text="lainnya"),
    }
    for field, ground in refused_grounds.items():
        with pytest.raises(InvalidGround) as refused:
            await handlers.act(permit.permit_id, Action.FREEZE, ground.text or "", OPERATOR, ground=ground)
        assert [e.field for e in refused.value.errors] == [field]
    assert database.committed.permits[permit.permit_id].status is PermitStatus.ISSUED
    assert database.committed.outbox == written


async def test_a_closure_of_the_plant_grounds_its_revocation_with_the_closure_as_evidence(handlers, database):
    permit = await an_issued_permit(handlers)
    closure = FacilityClosureOrdered(facility_id=permit.facility_id, province_code="32", regency_code="32.16",
                                     closure_id=uuid.uuid4(), scope=ClosureScope.PLANT, reason="klaster",
                                     starts_at=T0, ends_at=T0 + timedelta(days=5))
    await consumed(database, handlers.on_closure_ordered, closure, service="incidents")
    ground = SanctionGround(code=GroundCode.CLOSURE_NOT_OBSERVED, text="pabrik beroperasi selama penutupan",
                            evidence=GroundEvidence(closure_id=closure.closure_id))
    await handlers.act(permit.permit_id, Action.REVOKE, "pabrik beroperasi selama penutupan", OPERATOR,
                       ground=ground)
    revoked = database.committed.outbox[-1]
    assert revoked.type == "iomki.PermitRevoked.v1"
    assert SanctionGround.model_validate(revoked.data["ground"]) == ground


async def test_permits_are_numbered_in_the_order_they_are_issued_and_the_request_correlates_the_event(
        handlers, database):
    earlier = await handlers.apply(an_application(), COMPANY)
    later = await handlers.apply(an_application(address=ANOTHER_PLANT), COMPANY)

    first = await handlers.act(later.permit_id, Action.ISSUE, "documents complete", OPERATOR, request_id="req-7")
    second = await handlers.act(earlier.permit_id, Action.ISSUE, "documents complete", OPERATOR)

    assert (first.permit_number, second.permit_number) == ("IOMKI-2021-000001", "IOMKI-2021-000002")
    issued = database.committed.outbox[-2]
    assert issued.subject == str(later.facility_id) and issued.data["permit_number"] == "IOMKI-2021-000001"
    # The officer's request id follows the decision into its event and its history row.
    assert issued.correlationid == issued.causationid == "req-7"
    assert (await handlers.history(later.permit_id, OPERATOR))[-1]["causation_id"] == "req-7"


async def test_a_refused_decision_writes_nothing_and_leaves_no_gap_in_the_numbers(handlers, database):
    rejected = await handlers.apply(an_application(), COMPANY)
    await handlers.act(rejected.permit_id, Action.REJECT, "documents incomplete", OPERATOR)
    before = database.committed

    with pytest.raises(IllegalTransition) as refused:
        await handlers.act(rejected.permit_id, Action.ISSUE, "second thoughts", OPERATOR)

    assert refused.value.current is PermitStatus.REJECTED
    assert database.committed == before
    other = await handlers.apply(an_application(address=ANOTHER_PLANT), COMPANY)
    issued = await handlers.act(other.permit_id, Action.ISSUE, "documents complete", OPERATOR)
    assert issued.permit_number == "IOMKI-2021-000001"


async def test_a_permit_the_caller_may_not_see_is_not_found_and_left_as_it_was(handlers, database):
    permit = await handlers.apply(an_application(), COMPANY)  # in Kabupaten Bekasi, Jawa Barat
    before = database.committed
    central_java = Access(Principal("satgas-jateng", Role.TASK_FORCE, region="33"), Scope.REGION, "decide")
    competitor = Access(Principal("k3-rival", Role.COMPANY, nib="8120000999999"), Scope.OWN, "read")

    with pytest.raises(PermitNotFound):
        await handlers.act(permit.permit_id, Action.REJECT, "not ours to decide", central_java)
    with pytest.raises(PermitNotFound):
        await handlers.get(permit.permit_id, competitor)
    with pytest.raises(PermitNotFound):
        await handlers.act(uuid.uuid4(), Action.ISSUE, "no such permit", OPERATOR)

    assert database.committed == before
    west_java = Access(Principal("satgas-jabar", Role.TASK_FORCE, region="32"), Scope.REGION, "read")
    assert (await handlers.get(permit.permit_id, west_java)).permit.permit_id == permit.permit_id


# -- sanctions recommended by reports ------------------------------------------------------------------------


async def test_a_recommended_freeze_freezes_the_permit_once_caused_by_the_recommendation(handlers, database):
    permit = await an_issued_permit(handlers)
    freeze = recommended(permit, SanctionAction.FREEZE)

    envelope = await consumed(database, handlers.on_sanction_recommended, freeze, service="reports")

    frozen = database.committed.outbox[-1]
    assert frozen.type == "iomki.PermitFrozen.v1" and frozen.subject == str(permit.facility_id)
    assert frozen.causationid == str(envelope.id) and frozen.correlationid == envelope.correlationid
    assert frozen.data["freeze_count"] == 1 and frozen.data["reason"].startswith("ThreeWarningsInARow: 3 missed")
    step = (await handlers.history(permit.permit_id, OPERATOR))[-1]
    assert (step["action"], step["actor"], step["role"], step["causation_id"]) == (
        "freeze", "reports", "system", str(envelope.id))

    # The same recommendation again, past the inbox: a frozen permit is not frozen twice, and it is no failure.
    after = database.committed
    async with database.transaction() as work:
        await handlers.on_sanction_recommended(work, envelope, freeze)
    assert database.committed == after
    assert database.committed.permits[permit.permit_id].freeze_count == 1


async def test_a_recommended_revocation_of_a_frozen_permit_revokes_it(handlers, database, clock):
    permit = await an_issued_permit(handlers)
    await consumed(database, handlers.on_sanction_recommended, recommended(permit, SanctionAction.FREEZE),
                   service="reports")
    clock.advance(timedelta(days=7))

    revoke = await consumed(database, handlers.on_sanction_recommended, recommended(permit, SanctionAction.REVOKE),
                            service="reports")

    assert published(database)[-2:] == ["PermitFrozen", "PermitRevoked"]
    revoked = database.committed.outbox[-1]
    assert revoked.causationid == str(revoke.id)
    assert date.fromisoformat(revoked.data["reapply_after"]) == (T0 + timedelta(days=7 + 14)).date()
    assert database.committed.permits[permit.permit_id].status is PermitStatus.REVOKED


async def test_a_recommendation_for_a_permit_this_service_does_not_know_changes_nothing(handlers, database):
    permit = await an_issued_permit(handlers)
    before = database.committed
    unknown = replace(permit, permit_id=uuid.uuid4())

    await consumed(database, handlers.on_sanction_recommended, recommended(unknown, SanctionAction.FREEZE),
                   service="reports")

    assert database.committed == before


# -- closures ordered by incidents -----------------------------------------------------------------------------


async def test_a_closure_shows_the_plant_closed_until_it_reopens_but_never_counts_as_a_freeze(handlers, database):
    permit = await an_issued_permit(handlers)
    assert permit.permit_number is not None
    about = dict(facility_id=permit.facility_id, province_code="32", regency_code="32.16")
    closure = FacilityClosureOrdered(**about, closure_id=uuid.uuid4(), scope=ClosureScope.PLANT,
                                     reason="cluster of 3 cases", starts_at=T0, ends_at=T0 + timedelta(days=5))
    written = list(database.committed.outbox)

    await consumed(database, handlers.on_closure_ordered, closure, service="incidents")

    view = await handlers.get(permit.permit_id, OPERATOR)
    assert view.operating.label == "closed"
    assert view.permit.status is PermitStatus.ISSUED and view.permit.freeze_count == 0
    assert (await handlers.registry_entry(permit.permit_number)).status is RegistryStatus.CLOSED

    reopened = FacilityReopened(**about, closure_id=closure.closure_id, reopened_at=T0 + timedelta(days=5))
    await consumed(database, handlers.on_reopened, reopened, service="incidents")
    assert (await handlers.get(permit.permit_id, OPERATOR)).operating.label == "operating"
    assert (await handlers.registry_entry(permit.permit_number)).status is RegistryStatus.VALID

    # Reopening again, or a closure never ordered here: logged, and nothing changes.
    after = database.committed
    await consumed(database, handlers.on_reopened, reopened, service="incidents")
    await consumed(database, handlers.on_reopened, FacilityReopened(**about, closure_id=uuid.uuid4(),
                                                                     reopened_at=T0), service="incidents")
    assert database.committed == after
    # Permits keeps closures for its own views; it announces none of them.
    assert database.committed.outbox == written


# -- the public registry ---------------------------------------------------------------------------------------


async def test_the_registry_signs_an_issued_permit_and_knows_no_number_it_never_issued(handlers):
    permit = await an_issued_permit(handlers)
    assert permit.permit_number is not None

    entry = await handlers.registry_entry(permit.permit_number)

    assert (entry.status, entry.regency_name) == (RegistryStatus.VALID, "Kabupaten Bekasi")
    claims = registry_tokens.verify(entry.token, handlers.signing_key.public_key())
    assert (claims.permit_number, claims.company_name) == (permit.permit_number, "PT Baja Nusantara")
    with pytest.raises(PermitNotFound):
        await handlers.registry_entry("IOMKI-2021-999999")


# -- warnings and their letters --------------------------------------------------------------------------------


def warned(permit: Permit, *, deadline: datetime, consecutive: int = 1) -> WarningIssued:
    return WarningIssued(facility_id=permit.facility_id, province_code=permit.province_code,
                         regency_code=permit.regency_code, permit_id=permit.permit_id, warning_id=uuid.uuid4(),
                         period_id=uuid.uuid4(), deadline=deadline, consecutive=consecutive)


async def test_each_warning_is_kept_with_its_letter_numbered_in_turn_and_sent_for_the_companys_email(
        handlers, database, clock):
    applied = await handlers.apply(an_application(contact_email="k3@baja.example"), COMPANY)
    permit = await handlers.act(applied.permit_id, Action.ISSUE, "documents complete", OPERATOR)
    before = len(database.committed.outbox)
    clock.set(T0 + timedelta(days=5))
    first = await consumed(database, handlers.on_warning_issued, warned(permit, deadline=T0 + timedelta(days=4)),
                           service="reports")
    second = await consumed(database, handlers.on_warning_issued,
                            warned(permit, deadline=T0 + timedelta(days=8), consecutive=2), service="reports")

    letters = await handlers.letters(permit.permit_id, COMPANY)
    assert [le.number for le in letters] == [f"{permit.permit_number}/SP-1", f"{permit.permit_number}/SP-2"]
    assert [le.cause_event_id for le in letters] == [first.id, second.id]
    assert [le.periods[0].deadline for le in letters] == [T0 + timedelta(days=4), T0 + timedelta(days=8)]
    # Printed and sent after the transactions that issued them, once however often the sender runs.
    assert database.committed.outbox[before:] == []
    assert (await handlers.send_letters(), await handlers.send_letters()) == (2, 0)
    sent = database.committed.outbox[before:]
    assert [e.type for e in sent] == ["iomki.CompanyLetterIssued.v1"] * 2
    assert EVENT_TYPES[sent[0].type].topic is INTERNAL_CONTACTS
    assert [e.causationid for e in sent] == [str(first.id), str(second.id)]
    assert [e.correlationid for e in sent] == [first.correlationid, second.correlationid]
    assert sent[1].data["letter_number"] == f"{permit.permit_number}/SP-2"
    assert (sent[1].data["cause_type"], sent[1].data["cause_event_id"]) == ("WarningIssued", str(second.id))
    found, pdf = await handlers.letter_pdf(permit.permit_id, (None, LetterKind.WARNING, 2), COMPANY)
    assert found == letters[1] and base64.b64decode(sent[1].data["pdf_base64"]) == pdf  # the same letter, again


async def test_a_company_without_an_email_gets_its_letters_to_download_and_nothing_sent(handlers, database):
    permit = await an_issued_permit(handlers)
    before = len(database.committed.outbox)
    await consumed(database, handlers.on_warning_issued, warned(permit, deadline=T0), service="reports")
    assert len(await handlers.letters(permit.permit_id, OPERATOR)) == 1
    assert await handlers.send_letters() == 0 and database.committed.outbox[before:] == []


async def test_a_warning_for_a_permit_this_service_does_not_know_or_never_issued_changes_nothing(handlers, database):
    unknown = replace(await an_issued_permit(handlers), permit_id=uuid.uuid4())
    submitted = await handlers.apply(an_application(address=ANOTHER_PLANT), COMPANY)
    written = copy.deepcopy(database.committed)
    for permit in (unknown, submitted):
        await consumed(database, handlers.on_warning_issued, warned(permit, deadline=T0), service="reports")
    assert database.committed.letters == written.letters and database.committed.outbox == written.outbox


async def test_the_same_warning_in_a_second_event_gets_no_second_letter(handlers, database):
    permit = await an_issued_permit(handlers)
    warning = warned(permit, deadline=T0)
    await consumed(database, handlers.on_warning_issued, warning, service="reports")
    await consumed(database, handlers.on_warning_issued, warning, service="reports")  # another envelope
    assert [le.short_number for le in await handlers.letters(permit.permit_id, OPERATOR)] == ["SP-1"]


async def test_another_companys_letters_are_not_found(handlers, database):
    permit = await an_issued_permit(handlers)
    await consumed(database, handlers.on_warning_issued, warned(permit, deadline=T0), service="reports")
    competitor = Access(Principal("k3-other", Role.COMPANY, nib="8120000999999"), Scope.OWN, "letters")
    with pytest.raises(PermitNotFound):
        await handlers.letters(permit.permit_id, competitor)
    with pytest.raises(PermitNotFound):
        await handlers.letter_pdf(permit.permit_id, (None, LetterKind.WARNING, 1), competitor)
    with pytest.raises(LetterNotFound):
        await handlers.letter_pdf(permit.permit_id, (None, LetterKind.WARNING, 2), OPERATOR)
    with pytest.raises(LetterNotFound):  # a whole number of another permit
        await handlers.letter_pdf(permit.permit_id, ("IOMKI-2021-999999", LetterKind.WARNING, 1), OPERATOR)


async def test_a_recommended_freeze_has_its_letter_listing_the_warned_periods_by_their_deadlines(
        handlers, database, clock):
    applied = await handlers.apply(an_application(contact_email="k3@baja.example"), COMPANY)
    permit = await handlers.act(applied.permit_id, Action.ISSUE, "documents complete", OPERATOR)
    warnings = [warned(permit, deadline=T0 + timedelta(days=3 * i), consecutive=i + 1) for i in range(3)]
    for warning in warnings:
        await consumed(database, handlers.on_warning_issued, warning, service="reports")
    freeze = recommended(permit, SanctionAction.FREEZE).model_copy(update={"evidence": SanctionEvidence(
        missed_periods=[w.period_id for w in reversed(warnings)], warnings=[w.warning_id for w in warnings])})
    clock.set(T0 + timedelta(days=7))
    await consumed(database, handlers.on_sanction_recommended, freeze, service="reports")
    frozen = database.committed.outbox[-1]
    assert await handlers.send_letters() == 4  # three warnings' and the freeze's

    letter_event = database.committed.outbox[-1]
    assert (frozen.type, letter_event.type) == ("iomki.PermitFrozen.v1", "iomki.CompanyLetterIssued.v1")
    assert letter_event.causationid == str(frozen.id) and letter_event.data["cause_event_id"] == str(frozen.id)
    assert letter_event.data["cause_type"] == "PermitFrozen" and letter_event.data["kind"] == "freeze"
    letter = (await handlers.letters(permit.permit_id, COMPANY))[-1]
    assert letter.number == f"{permit.permit_number}/SPB-1"
    assert (letter.ground.code, letter.ground.ladder, letter.ground.rule) == (
        GroundCode.MISSED_REPORTS, freeze.ladder, "ThreeWarningsInARow")
    assert [p.deadline for p in letter.periods] == [w.deadline for w in warnings]  # oldest first


async def test_an_officers_revocation_has_its_letter_quoting_the_ground(handlers, database, clock):
    permit = await an_issued_permit(handlers)
    await handlers.act(permit.permit_id, Action.FREEZE, FINDING.text or "", OPERATOR, ground=FINDING)
    await handlers.act(permit.permit_id, Action.REACTIVATE, "corrected", OPERATOR)
    await handlers.act(permit.permit_id, Action.FREEZE, FINDING.text or "", OPERATOR, ground=FINDING)
    await handlers.act(permit.permit_id, Action.REVOKE, FINDING.text or "", OPERATOR, ground=FINDING)
    letters = await handlers.letters(permit.permit_id, OPERATOR)
    assert [le.short_number for le in letters] == ["SPB-1", "SPB-2", "SPC-1"]
    assert all(le.ground == LetterGround.of(FINDING) and le.periods == () for le in letters)
    assert letters[-1].cause_event_id == database.committed.outbox[-1].id  # the PermitRevoked (no e-mail given)
    _, pdf = await handlers.letter_pdf(permit.permit_id, letters[-1].letter_id, OPERATOR)
    assert pdf.startswith(b"%PDF")


async def test_a_refused_sanction_issues_no_letter_and_burns_no_number(handlers, database):
    permit = await an_issued_permit(handlers)
    with pytest.raises(IllegalTransition):
        await handlers.act(permit.permit_id, Action.REACTIVATE, "not frozen", OPERATOR)
    await handlers.act(permit.permit_id, Action.REVOKE, FINDING.text or "", OPERATOR, ground=FINDING)
    with pytest.raises(IllegalTransition):
        await handlers.act(permit.permit_id, Action.FREEZE, FINDING.text or "", OPERATOR, ground=FINDING)
    assert [le.short_number for le in await handlers.letters(permit.permit_id, OPERATOR)] == ["SPC-1"]
