"""The event contract between the services and with the agencies that subscribe to our topics.

Every event is a pydantic model here and nowhere else. On the wire it travels inside a CloudEvents 1.0
structured-mode envelope (see `Envelope`), keyed by the plant (`facility_id`) so that every event about one
plant is ordered within its topic.

Compatibility: adding an optional field is a minor change (same `type`); removing or changing a field is a
new major version (`iomki.<Name>.v2`), published beside the old one until consumers move. Consumers ignore
fields they do not know, which is what makes additive changes safe.
"""

from __future__ import annotations

import functools
import operator
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from enum import StrEnum
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, create_model,
    field_validator,
)

from shared import regions

CONTENT_TYPE = "application/cloudevents+json"


# ---------------------------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    public: bool
    owner: str


PERMITS = Topic("iomki.permits", 6, public=True, owner="permits")
REPORTS = Topic("iomki.reports", 6, public=True, owner="reports")
INCIDENTS = Topic("iomki.incidents", 6, public=True, owner="incidents")
ALERTS = Topic("iomki.alerts", 6, public=True, owner="notifier")
# Company contact details travel only here: never documented for agencies, readable by the notifier alone.
INTERNAL_CONTACTS = Topic("iomki.internal.contacts", 6, public=False, owner="permits")
DLQ = Topic("iomki.dlq", 1, public=False, owner="platform")
# PPKM levels, as the agency that sets them publishes them (the Ministry of Home Affairs' instructions, region by
# region, week by week). No service of ours writes here: an operator's level is recorded by the reports service.
PPKM = Topic("iomki.ppkm", 6, public=True, owner="ppkm")
# Field supervision: complaints, inspections and the regional offices' sanction requests. Counts, codes and
# references only: a complaint's words and its filer's contact, and inspectors' names and photos, stay in the
# supervision service.
SUPERVISION = Topic("iomki.supervision", 6, public=True, owner="supervision")

TOPICS: tuple[Topic, ...] = (PERMITS, REPORTS, INCIDENTS, ALERTS, PPKM, SUPERVISION, INTERNAL_CONTACTS, DLQ)


# ---------------------------------------------------------------------------------------------- values

# Events cross a trust line when they are consumed, so every field is bounded here, and every code is matched as
# a whole and in ASCII digits: `\d` also takes other scripts' digits ("１２３４５"). pydantic searches a pattern
# (Rust regex, where `$` is the very end), hence the anchors. Each bound is at least as wide as the HTTP model
# that feeds it, so no event an API has produced is refused; the APIs and domains use these same patterns.
NIB_PATTERN = r"^[0-9]{13}$"
KBLI_PATTERN = r"^[0-9]{5}$"
# The sequence is the year's counter (an int4), printed with at least six digits.
PERMIT_NUMBER_PATTERN = r"^IOMKI-[0-9]{4}-[0-9]{6,10}$"
CASE_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$"
# A warning's or a sanction's letter: its permit's number, the kind's abbreviation and its count per permit and kind.
LETTER_NUMBER_PATTERN = r"^IOMKI-[0-9]{4}-[0-9]{6,10}/(?:SP|SPB|SPC)-[0-9]{1,10}$"

ProvinceCode = Annotated[str, StringConstraints(pattern=regions.PROVINCE_PATTERN)]
RegencyCode = Annotated[str, StringConstraints(pattern=regions.REGENCY_PATTERN)]
Nib = Annotated[str, StringConstraints(pattern=NIB_PATTERN)]
Kbli = Annotated[str, StringConstraints(pattern=KBLI_PATTERN)]
PermitNumber = Annotated[str, StringConstraints(pattern=PERMIT_NUMBER_PATTERN)]
CaseRef = Annotated[str, StringConstraints(pattern=CASE_REF_PATTERN)]
LetterNumber = Annotated[str, StringConstraints(pattern=LETTER_NUMBER_PATTERN)]

NAME_MAX_LENGTH = 200  # a company's or a plant's name, as the permits API takes it
REASON_MAX_LENGTH = 2000  # an officer's reason (the API takes 1000) or one the platform writes itself
EMAIL_MAX_LENGTH = 320
PHONE_MAX_LENGTH = 40
# A plant's KBLI codes: the permits API takes 20; events written before it had a bound may hold more, but no
# event within MAX_EVENT_BYTES can hold more than this.
KBLI_MAX_ITEMS = 8192
# A sanction's evidence: the periods and warnings of the ladder's window, a handful; the reports service sends
# at most the latest this many, and keeps the whole evidence in its own tables.
EVIDENCE_MAX_ITEMS = 1000
INT4_MAX = 2**31 - 1  # what the services' tables store
# A request's id or an event's: the services take a caller's X-Request-Id only up to 200 characters (see
# shared/web/http.py); ids of any tracing scheme fit with room to spare.
CORRELATION_MAX_LENGTH = 1024

Name = Annotated[str, StringConstraints(max_length=NAME_MAX_LENGTH)]
Reason = Annotated[str, StringConstraints(max_length=REASON_MAX_LENGTH)]
# A name the platform gives: a sanction rule, an alert key, an event type, a role.
Label = Annotated[str, StringConstraints(max_length=200)]
Count = Annotated[int, Field(ge=0, le=INT4_MAX)]


# ---------------------------------------------------------------------------------------------- contact data
# One e-mail address, nothing that could become a second header or a second recipient: checked where an address
# enters (permits' contact, the notifier's targets) and again by the notifier's e-mail channel before it sends,
# since a stored address may predate the rule.

LOCAL_PART_MAX_LENGTH = 64  # RFC 5321 §4.5.3.1.1
DOMAIN_MAX_LENGTH = 253
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Shape only, for the OpenAPI document: `single_email` decides.
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class InvalidEmail(ValueError):
    pass


def single_email(value: str) -> str:
    """Exactly one addr-spec (`local@domain`), its domain in ASCII (an internationalised one is IDNA-encoded);
    no display name, comment, list, quoting, whitespace or control character. Returns the address to store."""
    if len(value) > EMAIL_MAX_LENGTH:
        raise InvalidEmail(f"an e-mail address has at most {EMAIL_MAX_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise InvalidEmail("an e-mail address must not contain spaces, line breaks or control characters")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise InvalidEmail("an e-mail address must be one address like name@example.go.id")
    if not local.isascii():
        raise InvalidEmail("an e-mail address's local part must be ASCII")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidEmail("an e-mail address's domain is not a valid domain name") from None
    candidate = f"{local}@{ascii_domain}"
    try:
        parsed = Address(addr_spec=candidate)
    except (ValueError, IndexError, HeaderParseError):
        raise InvalidEmail("an e-mail address must be one address like name@example.go.id") from None
    # The parser drops comments and unquotes: only an address that reads back unchanged is a plain addr-spec.
    if parsed.addr_spec != candidate or parsed.username != local or parsed.domain != ascii_domain:
        raise InvalidEmail("an e-mail address must be one address like name@example.go.id")
    labels = ascii_domain.split(".")
    if (len(local) > LOCAL_PART_MAX_LENGTH or len(ascii_domain) > DOMAIN_MAX_LENGTH or len(labels) < 2
            or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit()):
        raise InvalidEmail("an e-mail address's domain is not a valid domain name")
    return candidate


# A request field holding one e-mail address (422 otherwise, naming the field).
EmailAddress = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=EMAIL_MAX_LENGTH),
                         AfterValidator(single_email)]


# ---------------------------------------------------------------------------------------------- events


class BaseEvent(BaseModel):
    """Base of every event's data: its topic, its major version, and its subject (also the message key)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: ClassVar[Topic]
    major: ClassVar[int] = 1

    @classmethod
    def type_name(cls) -> str:
        return f"iomki.{cls.__name__}.v{cls.major}"

    @property
    def subject(self) -> str:
        raise NotImplementedError


class Event(BaseEvent):
    """An event about one plant. `facility_id` is the message key; region codes let consumers route."""

    facility_id: uuid.UUID
    province_code: ProvinceCode
    regency_code: RegencyCode

    @property
    def subject(self) -> str:
        return str(self.facility_id)


class SectorClass(StrEnum):
    CRITICAL = "critical"
    ESSENTIAL = "essential"
    NON_ESSENTIAL = "non_essential"


# permits ----------------------------------------------------------------------------------------------


class PermitEvent(Event):
    topic: ClassVar[Topic] = PERMITS
    permit_id: uuid.UUID
    nib: Nib


class PermitKind(StrEnum):
    """What a permit covers (SE Menperin 8/2020 names both holders): an industrial company's plant, or an
    industrial-estate company's estate, whose common areas it reports on."""

    PLANT = "plant"
    ESTATE = "estate"


class PermitApplied(PermitEvent):
    company_name: Name
    facility_name: Name
    kbli: list[Kbli] = Field(max_length=KBLI_MAX_ITEMS)
    sector_class: SectorClass
    workforce_total: Count
    # Added in v1 with a default: events published before the KBLI table carry none.
    export_oriented: bool = Field(False, description="The plant's activities are export-oriented, as the KBLI table "
                                                     "or an operator's confirmation says.")
    # Added in v1 with defaults: events published before estates carry neither.
    kind: PermitKind = Field(PermitKind.PLANT, description="A plant, or an industrial estate.")
    estate_permit_number: PermitNumber | None = Field(
        None, description="The estate the plant says it lies in (its permit number); the estate confirms it.")


class PermitIssued(PermitEvent):
    permit_number: PermitNumber
    company_name: Name
    sector_class: SectorClass
    workforce_total: Count
    issued_at: datetime
    # Added in v1 with a default: events published before the KBLI table carry none.
    export_oriented: bool = Field(False, description="The plant's activities are export-oriented.")
    # Added in v1 with a default: events published before estates carry none.
    kind: PermitKind = Field(PermitKind.PLANT, description="A plant, or an industrial estate.")


class EstateTenancyConfirmed(PermitEvent):
    """An industrial estate confirmed that the plant (this event's facility and permit) lies inside it. From now
    on the estate's company reads the plant's permit, reports, compliance and incidents, and hears of its alerts."""

    estate_facility_id: uuid.UUID
    estate_permit_id: uuid.UUID
    estate_permit_number: PermitNumber
    estate_nib: Nib = Field(description="The estate company's NIB: the `nib` of its estate-role tokens.")
    estate_name: Name
    confirmed_at: datetime


class TenancyEndCause(StrEnum):
    RELEASED = "released"  # the estate says the plant is no longer inside it
    ESTATE_REVOKED = "estate_revoked"  # the estate's own permit was revoked


class EstateTenancyEnded(PermitEvent):
    """The plant is no longer an estate's tenant: the estate's company stops reading it."""

    estate_facility_id: uuid.UUID
    estate_nib: Nib
    cause: TenancyEndCause
    reason: Reason


class ClassBasis(StrEnum):
    KBLI_TABLE = "kbli_table"  # derived from the plant's KBLI codes through the ministry's sector lists
    OPERATOR = "operator"  # an operator confirmed the company's own claim over the table's reading


class SectorClassChanged(PermitEvent):
    """A plant's sector class or export orientation changed: the KBLI table was revised, or an operator confirmed
    a company's claim that the table reads its activities wrongly."""

    permit_number: PermitNumber | None
    sector_class: SectorClass
    export_oriented: bool
    basis: ClassBasis
    table_version: Label = Field(description="The KBLI table's version the class was read from (or overridden).")
    reason: Reason


class PermitRejected(PermitEvent):
    reason: Reason


class SanctionAction(StrEnum):
    """A sanction on a permit: recommended by the reports ladder, decided by the permits service."""

    FREEZE = "freeze"
    REVOKE = "revoke"


class GroundCode(StrEnum):
    """Why a permit is frozen or revoked: a closed list, so that the ministry can say why, ground by ground."""

    MISSED_REPORTS = "missed_reports"  # the reporting regime's ladder (SE 8/2020, SE 3/2021, SE 5/2021)
    FALSE_DECLARATION = "false_declaration"  # a finding contradicts a report declared true (SE 5/2021)
    INSPECTION_FINDING = "inspection_finding"  # a health-protocol violation found on inspection (SE 4/2020)
    CLOSURE_NOT_OBSERVED = "closure_not_observed"  # the plant operated during an ordered closure
    COMPANY_REQUEST = "company_request"  # the company asked to stop (frozen) or to end its permit
    CAPACITY_BREACHES = "capacity_breaches"  # repeated breaches of the PPKM staffing cap (the capacity ladder)
    OTHER = "other"  # anything else, stated in the ground's text


FINDING_REF_MAX_LENGTH = 100  # an inspection's or a task force's own reference for a finding


class GroundEvidence(BaseModel):
    """What a ground rests on. The reports service and the inspection records keep the whole of it."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    missed_periods: list[uuid.UUID] = Field(default_factory=list, max_length=EVIDENCE_MAX_ITEMS)
    warnings: list[uuid.UUID] = Field(default_factory=list, max_length=EVIDENCE_MAX_ITEMS)
    breaches: list[uuid.UUID] = Field(default_factory=list, max_length=EVIDENCE_MAX_ITEMS,
                                      description="The capacity breaches (CapacityBreachDetected) a ground rests on.")
    report_id: uuid.UUID | None = Field(None, description="The declared report a finding contradicts.")
    closure_id: uuid.UUID | None = Field(None, description="The closure the plant did not observe.")
    finding: Annotated[str, StringConstraints(max_length=FINDING_REF_MAX_LENGTH)] | None = Field(
        None, description="The inspection's reference for the finding.")


class SanctionGround(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    code: GroundCode
    ladder: Label | None = Field(None, description="For missed reports: the regime whose ladder applied, "
                                                   "e.g. SE-3/2021.")
    rule: Label | None = Field(None, description="For missed reports: the ladder's named rule that fired.")
    text: Reason | None = Field(None, description="The officer's words; required for `other`.")
    evidence: GroundEvidence = Field(default_factory=GroundEvidence)


class PermitFrozen(PermitEvent):
    permit_number: PermitNumber
    reason: Reason
    freeze_count: Count = Field(description="How many times this permit has been frozen, this one included.")
    # Added in v1 with a default: events published before grounds existed carry none.
    ground: SanctionGround | None = None


class PermitReactivated(PermitEvent):
    permit_number: PermitNumber
    reason: Reason
    # Added in v1 with defaults: an officer's reactivation answers no request and excuses no period.
    request_id: uuid.UUID | None = Field(None, description="The company's reactivation request it approves.")
    excused_periods: list[uuid.UUID] = Field(
        default_factory=list, max_length=EVIDENCE_MAX_ITEMS,
        description="Missed periods filed late for the request: excused from the sanction ladder from now on.")


class ReactivationRequested(PermitEvent):
    """A frozen company asks to operate again; an operator reviews it."""

    request_id: uuid.UUID = Field(description="The request; its decision names it again.")
    permit_number: PermitNumber
    missed_periods: list[uuid.UUID] = Field(max_length=EVIDENCE_MAX_ITEMS,
                                            description="The missed periods the freeze rests on, now filed late.")
    requested_at: datetime = Field(description="When the company asked.")


class ReactivationRejected(PermitEvent):
    """An operator rejected a reactivation request: the permit stays frozen, and the company may ask again."""

    request_id: uuid.UUID = Field(description="The request rejected (from ReactivationRequested).")
    permit_number: PermitNumber
    reason: Reason


class ObjectionOutcome(StrEnum):
    UPHELD = "upheld"  # the sanction stands
    OVERTURNED = "overturned"  # the sanction is reversed: the permit returns to where it was before it
    PARTLY = "partly"  # a revocation is reduced to a freeze


class ObjectionFiled(PermitEvent):
    """A company objects to a freeze or a revocation within the working days the law gives it."""

    objection_id: uuid.UUID
    sanction: SanctionAction
    sanctioned_at: datetime
    filed_at: datetime


class ObjectionDecided(PermitEvent):
    objection_id: uuid.UUID
    outcome: ObjectionOutcome
    reason: Reason


class SanctionReversed(PermitEvent):
    """An objection overturned a sanction (wholly, or a revocation down to a freeze)."""

    objection_id: uuid.UUID
    permit_number: PermitNumber | None
    reversed: SanctionAction
    to_status: Literal["ISSUED", "FROZEN"]
    reason: Reason
    freeze_count: Count = Field(description="The permit's freezes that stand after the reversal: one overturned no "
                                            "longer counts; a revocation reduced to a freeze counts as one.")


class PermitRevoked(PermitEvent):
    permit_number: PermitNumber | None
    reason: Reason
    reapply_after: date
    # Added in v1 with a default: events published before grounds existed carry none.
    ground: SanctionGround | None = None


class RequestDecision(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"


class SanctionRequestDecided(PermitEvent):
    """An operator decided a regional office's sanction request (SanctionRequested): approved, the permit is frozen
    or revoked on the request's ground (PermitFrozen or PermitRevoked follows); declined, nothing changes."""

    request_id: uuid.UUID
    action: SanctionAction
    decision: RequestDecision
    reason: Reason


# reports ----------------------------------------------------------------------------------------------


class ReportEvent(Event):
    topic: ClassVar[Topic] = REPORTS
    permit_id: uuid.UUID


class ReportDue(ReportEvent):
    period_id: uuid.UUID
    deadline: datetime


class ProtocolItem(StrEnum):
    """What the health protocol asks of a plant (SE Menperin 4/2020, Kepmenkes 328/2020): the report's checklist
    items, then what only an inspection sees."""

    TEMPERATURE_SCREENING = "temperature_screening"
    MASKS = "masks"
    DISTANCING = "distancing"
    VENTILATION = "ventilation"
    DISINFECTION = "disinfection"
    HANDWASH_STATIONS = "handwash_stations"
    PEDULILINDUNGI_SCAN = "pedulilindungi_scan"
    SICK_WORKERS_BARRED = "sick_workers_barred"  # a worker with symptoms is sent home at the gate
    SHARED_SPACES_LIMITED = "shared_spaces_limited"  # canteens, toilets and prayer rooms kept uncrowded
    COVID_TEAM = "covid_team"  # the workplace's COVID-19 team exists and keeps its records


# The items a company answers yes or no in each report; an inspection checks these and the rest.
REPORTED_PROTOCOL_ITEMS: tuple[ProtocolItem, ...] = tuple(ProtocolItem)[:7]


class ReportSubmitted(ReportEvent):
    """Counts only: a report's free text stays in the reports service."""

    report_id: uuid.UUID
    period_id: uuid.UUID
    period_starts_at: datetime
    deadline: datetime
    late: bool
    workforce_total: Count
    on_site_total: Count
    odp: Count
    pdp: Count
    confirmed_positive: Count
    tests_pcr: Count
    tests_antigen: Count
    vaccinated_dose1: Count
    vaccinated_dose2: Count
    vaccinated_booster: Count
    # Added in v1 with a default: events published before it carry no declaration.
    declared: bool = Field(False, description="The company declared the report's data true (SE 5/2021); who declared "
                                              "stays in the reports service.")
    # Added in v1 with defaults: events published before them carry only `confirmed_positive`.
    new_positives: Count | None = Field(
        None, description="Workers newly confirmed positive since the plant's previous report (the same number as "
                          "`confirmed_positive`, which it names).")
    isolating_workers: Count | None = Field(
        None, description="Workers isolating on the report's date, whenever they were confirmed.")
    # Added in v1 with a default: events published before it name no lapse.
    protocol_lapses: list[ProtocolItem] = Field(
        default_factory=list, max_length=len(ProtocolItem),
        description="The checklist items the company answered no; every other reported item it answered yes.")


class ReportOverdue(ReportEvent):
    period_id: uuid.UUID
    deadline: datetime


class WarningCause(StrEnum):
    MISSED_REPORT = "missed_report"  # a period's report did not come by its deadline
    CAPACITY_BREACH = "capacity_breach"  # a report counted more people on site than the PPKM cap allows


class WarningIssued(ReportEvent):
    warning_id: uuid.UUID
    period_id: uuid.UUID
    deadline: datetime
    consecutive: Count = Field(description="Warnings of this cause in the ladder's reckoning, this one included: in a "
                                           "row for missed reports, within the window for capacity breaches.")
    # Added in v1 with defaults: events published before them warn of a missed report.
    cause: WarningCause = WarningCause.MISSED_REPORT
    breach_id: uuid.UUID | None = Field(None, description="For a capacity breach: the breach (CapacityBreachDetected), "
                                                          "whose report is of `period_id`.")

class SanctionEvidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    missed_periods: list[uuid.UUID] = Field(max_length=EVIDENCE_MAX_ITEMS)
    warnings: list[uuid.UUID] = Field(max_length=EVIDENCE_MAX_ITEMS)
    # Added in v1 with a default: the missed-reports ladder names no breach.
    breaches: list[uuid.UUID] = Field(default_factory=list, max_length=EVIDENCE_MAX_ITEMS)


class SanctionRecommended(ReportEvent):
    action: SanctionAction
    rule: Label = Field(description="The named policy rule that fired, e.g. ThreeWarningsInARow.")
    evidence: SanctionEvidence
    # Added in v1 with a default: events published before it name no ladder.
    ladder: Label | None = Field(None, description="The ladder the rule belongs to: the circular whose regime the "
                                                   "periods opened under, e.g. SE-3/2021, or PPKM for capacity.")
    # Added in v1 with a default: events published before it recommend on missed reports.
    ground: GroundCode = Field(GroundCode.MISSED_REPORTS, description="The ground the sanction would rest on: "
                               "missed_reports or capacity_breaches.")


class PpkmLevel(StrEnum):
    """The community activity restriction (PPKM) stage of a region: the emergency stage of July 2021, then levels."""

    EMERGENCY = "emergency"  # PPKM Darurat, stricter than level 4
    LEVEL_4 = "4"
    LEVEL_3 = "3"
    LEVEL_2 = "2"
    LEVEL_1 = "1"


class CapacityMeasure(StrEnum):
    ON_SITE_TOTAL = "on_site_total"  # people on site across the production shifts, against the plant's cap
    SHIFT_ON_SITE = "shift_on_site"  # people on site in one production shift, against the shift's cap
    SHIFT_COUNT = "shift_count"  # production shifts run, against the shifts allowed
    OFFICE_ON_SITE = "office_on_site"  # office staff on site, against the offices' cap


MAX_SHIFTS = 8  # production shifts a report may list (the reports API takes as many)


class CapacityExcess(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    measure: CapacityMeasure
    shift: Annotated[int, Field(ge=1, le=MAX_SHIFTS)] | None = Field(None, description="The shift, from 1, for "
                                                                                       "shift_on_site.")
    cap: Count = Field(description="People (or shifts) the rule allows.")
    count: Count = Field(description="People (or shifts) the report counted.")


class CapacityBreachDetected(ReportEvent):
    """A report counted more people on site than the PPKM rule in force for the plant on that day allows."""

    breach_id: uuid.UUID
    report_id: uuid.UUID
    period_id: uuid.UUID
    day: date = Field(description="The day checked, in the plant's time zone: the day the report was made, or its "
                                  "deadline for a late report.")
    level: PpkmLevel = Field(description="The regency's PPKM level on that day.")
    rule_set: Label = Field(description="The rule set in force, named by the instruction that set it.")
    rule: Label = Field(description="The named rule that applied, e.g. L4-Export.")
    sector_class: SectorClass
    export_oriented: bool
    excesses: list[CapacityExcess] = Field(min_length=1, max_length=MAX_SHIFTS + 3)


# ppkm -------------------------------------------------------------------------------------------------

INSTRUCTION_MAX_LENGTH = 200


class PpkmLevelSet(BaseEvent):
    """A PPKM level for one regency, or for every regency of a province, from a date, as an instruction sets it.
    Keyed by the province, so that a province's levels are read in the order they were published."""

    topic: ClassVar[Topic] = PPKM
    province_code: ProvinceCode
    regency_code: RegencyCode | None = Field(None, description="The regency; none sets every regency of the province.")
    level: PpkmLevel = Field(description="The PPKM level: the emergency stage or levels 4 to 1.")
    effective_from: date = Field(description="The first day the level is in force, in the region's time zone.")
    effective_until: date | None = Field(None, description="The last day it is in force; none until another level.")
    instruction: Annotated[str, StringConstraints(min_length=1, max_length=INSTRUCTION_MAX_LENGTH)] = Field(
        description="The instruction that sets it, e.g. Inmendagri 22/2021.")

    @property
    def subject(self) -> str:
        return self.province_code

    @field_validator("regency_code")
    @classmethod
    def _in_province(cls, value: str | None, info: Any) -> str | None:
        province = info.data.get("province_code")
        if value is not None and province is not None and not value.startswith(f"{province}."):
            raise ValueError(f"regency {value} is not in province {province}")
        return value

    @field_validator("effective_until")
    @classmethod
    def _after_start(cls, value: date | None, info: Any) -> date | None:
        start = info.data.get("effective_from")
        if value is not None and start is not None and value < start:
            raise ValueError("effective_until is before effective_from")
        return value


# incidents --------------------------------------------------------------------------------------------


class IncidentEvent(Event):
    topic: ClassVar[Topic] = INCIDENTS


class CaseSource(StrEnum):
    DIRECT = "direct"
    REPORT = "report"


class CaseDetected(IncidentEvent):
    """No personal data: the company's own reference for the case stays in the incidents service."""

    case_id: uuid.UUID
    # Kept (required in v1) with the platform's opaque id, so consumers of v1 still validate; v2 drops it.
    case_ref: CaseRef = Field(description="The platform's opaque reference for the case: its `case_id` as text. "
                                          "Never the company's own reference.")
    confirmed_on: date
    symptomatic: bool
    close_contacts: Count
    source: CaseSource


class IsolationStarted(IncidentEvent):
    case_id: uuid.UUID
    starts_on: date
    ends_on: date


class ContactsQuarantined(IncidentEvent):
    """Close contacts added to a case's line list. Each quarantines from its own last exposure (Kepmenkes
    4641/2021): `starts_on` is the earliest of their exposures, `ends_on` the latest of their quarantine ends as
    known now (a negative exit test on day 5 shortens one's quarantine later)."""

    case_id: uuid.UUID
    contacts: Count
    starts_on: date
    ends_on: date


class ClosureScope(StrEnum):
    PLANT = "plant"
    ROOM = "room"


class CaseLinkKind(StrEnum):
    """Why two cases are one chain of transmission, as a health office traces it."""

    SAME_LINE = "same_line"  # the same production line or room
    SAME_SHIFT = "same_shift"
    NAMED_CONTACT = "named_contact"  # one was recorded as the other's close contact before testing positive


class ClusterDeclared(IncidentEvent):
    cluster_id: uuid.UUID
    case_count: Count
    window_days: Count
    first_confirmed_on: date
    last_confirmed_on: date
    # Added in v1 with a default: clusters declared before it were counted without links.
    rule: Reason | None = Field(None, description="The rule that declared it, in words, e.g. more than 2 linked "
                                                  "confirmed cases within 14 days.")


class PossibleClusterRaised(IncidentEvent):
    """Confirmed cases at one plant, not linked to each other, above the configured count within the window: the
    task force (with the health office) judges whether they are one cluster. Nothing closes on it."""

    case_count: Count
    window_days: Count
    first_confirmed_on: date
    last_confirmed_on: date


class ClosureRecommended(IncidentEvent):
    """A cluster's closure, recommended to the regency task force, which orders, changes or declines it."""

    recommendation_id: uuid.UUID
    cluster_id: uuid.UUID
    scope: ClosureScope
    days: Annotated[int, Field(ge=1, le=60)]
    rule: Reason = Field(description="The rule that recommends it, in words.")
    case_count: Count = Field(description="The evidence: the cluster's linked confirmed cases …")
    first_confirmed_on: date = Field(description="… and the first and last of their confirmation dates.")
    last_confirmed_on: date
    answer_by: datetime = Field(description="Unanswered by then, it escalates (ClosureRecommendationOverdue).")


class RecommendationDecision(StrEnum):
    ORDERED = "ordered"  # as recommended, or with the scope or length changed
    DECLINED = "declined"


class ClosureRecommendationDecided(IncidentEvent):
    recommendation_id: uuid.UUID
    cluster_id: uuid.UUID
    decision: RecommendationDecision
    closure_id: uuid.UUID | None = Field(None, description="The closure ordered, when it was.")
    reason: Reason | None = Field(None, description="Why it was declined or changed.")
    decided_by_role: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]


class ClosureRecommendationOverdue(IncidentEvent):
    recommendation_id: uuid.UUID
    cluster_id: uuid.UUID
    answer_by: datetime


class ClosureAuthority(StrEnum):
    """Who ordered a closure."""

    RULE = "rule"  # a room's disinfection after a case, or a cluster where the province closes automatically
    TASK_FORCE = "task_force"  # the regency task force, on a recommendation
    COMPANY = "company"  # the company itself


class FacilityClosureOrdered(IncidentEvent):
    closure_id: uuid.UUID
    scope: ClosureScope
    reason: Reason
    starts_at: datetime
    ends_at: datetime = Field(description="Earliest reopening; later orders for the same closure extend it.")
    cluster_id: uuid.UUID | None = None
    # Added in v1 with defaults: closures ordered before them were ordered by rule.
    ordered_by: ClosureAuthority = ClosureAuthority.RULE
    ordered_by_actor: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="The account that ordered it, when a person did.")
    recommendation_id: uuid.UUID | None = Field(None, description="The recommendation it answers, if any.")


class FacilityReopened(IncidentEvent):
    closure_id: uuid.UUID
    reopened_at: datetime
    # Added in v1 with a default: reopenings announced before it did not say what their closure closed.
    scope: ClosureScope | None = Field(None, description="What the closure closed: a room (or line), or the plant.")


class CaseClosed(IncidentEvent):
    case_id: uuid.UUID
    closed_on: date


class CaseVerdict(StrEnum):
    """What the regency health office found when it checked a case a company entered."""

    CONFIRMED = "confirmed"  # as entered
    CORRECTED = "corrected"  # its dates or symptoms were wrong, and are corrected


class CaseCorrectable(StrEnum):
    """The facts of a case the health office may correct."""

    CONFIRMED_ON = "confirmed_on"
    TESTED_ON = "tested_on"
    SYMPTOMATIC = "symptomatic"
    SYMPTOM_ONSET_ON = "symptom_onset_on"


class CaseVerified(IncidentEvent):
    """The health office confirmed or corrected a case. A correction that moves the isolation is followed by an
    `IsolationStarted` for the same case (the corrected period)."""

    case_id: uuid.UUID
    verdict: CaseVerdict
    corrected: list[CaseCorrectable] = Field(default_factory=list, max_length=len(CaseCorrectable),
                                             description="The facts corrected; empty when confirmed as entered.")
    reason: Reason | None = Field(None, description="Why it was corrected.")
    verified_by_role: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]


class ContactFollowUpClosed(IncidentEvent):
    """The health office closed the follow-up of a case's close contacts: every one has left quarantine, released
    or found positive. No contact is added to the case after it."""

    case_id: uuid.UUID
    contacts: Count
    released: Count = Field(description="Contacts who left quarantine negative or at its end.")
    tested_positive: Count = Field(description="Contacts who tested positive: cases of their own.")
    closed_by_role: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]


# alerts -----------------------------------------------------------------------------------------------


class Severity(StrEnum):
    LOW = "low"
    HIGH = "high"


class TaskForceLevel(StrEnum):
    REGENCY = "regency"
    PROVINCE = "province"
    NATIONAL = "national"


class AlertEvent(Event):
    """Alerts name task-force levels and regions, never a contact's address."""

    topic: ClassVar[Topic] = ALERTS
    alert_id: uuid.UUID


class AlertRaised(AlertEvent):
    alert_key: Label
    event_type: Label
    severity: Severity
    level: TaskForceLevel
    count: Count


class AlertDelivered(AlertEvent):
    delivery_id: uuid.UUID
    channel: Literal["webhook", "email"]
    level: TaskForceLevel
    attempts: Count


class AlertEscalated(AlertEvent):
    from_level: TaskForceLevel
    to_level: TaskForceLevel


class AlertAcknowledged(AlertEvent):
    level: TaskForceLevel
    acknowledged_by_role: Label
    response_seconds: float


# supervision ------------------------------------------------------------------------------------------


class SupervisionEvent(Event):
    topic: ClassVar[Topic] = SUPERVISION
    permit_id: uuid.UUID


class ComplaintCategory(StrEnum):
    PROTOCOL = "protocol"  # the health protocol is not followed (masks, distancing, screening)
    CAPACITY = "capacity"  # more people at work than the PPKM rule allows
    OPERATING_WHILE_STOPPED = "operating_while_stopped"  # working while frozen, revoked or closed
    HIDDEN_CASES = "hidden_cases"  # positive workers kept at work or not reported
    OTHER = "other"


class ComplaintFiled(SupervisionEvent):
    """A member of the public complained about the plant (filed with its permit number, or matched to it by the
    region's office). The complaint's words and its filer's contact stay in the supervision service."""

    complaint_id: uuid.UUID
    category: ComplaintCategory
    filed_at: datetime


class FindingResult(StrEnum):
    MET = "met"
    VIOLATED = "violated"
    NOT_CHECKED = "not_checked"


class InspectionFinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    item: ProtocolItem
    result: FindingResult


class InspectionBody(StrEnum):
    """Who took part in an inspection: the ministry, the region's industry or manpower office, the task force."""

    MINISTRY = "ministry"
    REGIONAL_OFFICE = "regional_office"
    TASK_FORCE = "task_force"


INSPECTION_REF_PATTERN = r"^INSP-[0-9]{4}-[0-9]{6,10}$"
InspectionRef = Annotated[str, StringConstraints(pattern=INSPECTION_REF_PATTERN)]


class InspectionRecorded(SupervisionEvent):
    """An inspection's findings against the health protocol. The inspectors' names, notes and photos stay in the
    supervision service."""

    inspection_id: uuid.UUID
    reference: InspectionRef = Field(description="The inspection's reference, which a ground's `finding` names.")
    inspected_on: date
    bodies: list[InspectionBody] = Field(min_length=1, max_length=len(InspectionBody))
    findings: list[InspectionFinding] = Field(max_length=len(ProtocolItem))
    violations: Count = Field(description="How many items were found violated.")
    contradicted_report_id: uuid.UUID | None = Field(
        None, description="The declared report whose yes a violation contradicts (SE 5/2021), if any.")


class SanctionRequested(SupervisionEvent):
    """A regional office asks the ministry to freeze or revoke the plant's permit, on a ground and its evidence.
    The office never sanctions: the request waits in the ministry's review queue (SanctionRequestDecided)."""

    request_id: uuid.UUID
    action: SanctionAction
    ground: SanctionGround
    reason: Reason
    office_region: Annotated[str, StringConstraints(pattern=regions.REGION_CODE_PATTERN)] = Field(
        description="The region of the office that asks: a province or a regency code.")
    inspection_id: uuid.UUID | None = Field(None, description="The inspection the request rests on, if any.")
    requested_at: datetime


# internal ---------------------------------------------------------------------------------------------


class CompanyContactsUpdated(Event):
    """Internal: company contact details for company-facing notices. Never on a public topic."""

    topic: ClassVar[Topic] = INTERNAL_CONTACTS
    permit_id: uuid.UUID
    nib: Nib
    company_name: Name
    email: Annotated[str, StringConstraints(max_length=EMAIL_MAX_LENGTH)] | None = None
    phone: Annotated[str, StringConstraints(max_length=PHONE_MAX_LENGTH)] | None = None


class LetterKind(StrEnum):
    """What a letter to the company is: a warning (Surat Peringatan), a freeze or a revocation."""

    WARNING = "warning"
    FREEZE = "freeze"
    REVOCATION = "revocation"


# A letter's PDF, as its event carries it (base64): small enough that the event stays well within MAX_EVENT_BYTES
# beside its envelope. The permits service bounds what a letter lists, so a letter is never near it.
LETTER_PDF_MAX_BYTES = 45 * 1024
LETTER_PDF_BASE64_MAX_LENGTH = 4 * -(-LETTER_PDF_MAX_BYTES // 3)
BASE64_PATTERN = r"^[A-Za-z0-9+/]*={0,2}$"


class CompanyLetterIssued(Event):
    """Internal: the letter of a warning, a freeze or a revocation, for the company's e-mail. Never on a public
    topic. It accompanies a public event (`cause_type`, `cause_event_id`), which travels on another topic: the
    notifier pairs the two in whatever order they come."""

    topic: ClassVar[Topic] = INTERNAL_CONTACTS
    permit_id: uuid.UUID
    nib: Nib
    letter_id: uuid.UUID
    letter_number: LetterNumber
    kind: LetterKind
    cause_type: Literal["WarningIssued", "PermitFrozen", "PermitRevoked"]
    cause_event_id: uuid.UUID = Field(description="The id of the public event the letter is about.")
    issued_at: datetime
    pdf_base64: Annotated[str, StringConstraints(max_length=LETTER_PDF_BASE64_MAX_LENGTH,
                                                 pattern=BASE64_PATTERN)] | None = Field(
        None, description="The letter as a PDF; none when it could not be carried (it is downloaded instead).")


EVENT_TYPES: dict[str, type[BaseEvent]] = {
    cls.type_name(): cls
    for cls in (
        PermitApplied, PermitIssued, PermitRejected, PermitFrozen, PermitReactivated, PermitRevoked,
        ReactivationRequested, ReactivationRejected, ObjectionFiled, ObjectionDecided, SanctionReversed,
        SectorClassChanged, EstateTenancyConfirmed, EstateTenancyEnded, SanctionRequestDecided,
        ReportDue, ReportSubmitted, ReportOverdue, WarningIssued, SanctionRecommended, CapacityBreachDetected,
        PpkmLevelSet,
        ComplaintFiled, InspectionRecorded, SanctionRequested,
        CaseDetected, IsolationStarted, ContactsQuarantined, ClusterDeclared, PossibleClusterRaised,
        ClosureRecommended, ClosureRecommendationDecided, ClosureRecommendationOverdue, FacilityClosureOrdered,
        FacilityReopened, CaseClosed, CaseVerified, ContactFollowUpClosed,
        AlertRaised, AlertDelivered, AlertEscalated, AlertAcknowledged,
        CompanyContactsUpdated, CompanyLetterIssued,
    )
}


def events_on(topic: Topic) -> list[type[BaseEvent]]:
    return [cls for cls in EVENT_TYPES.values() if cls.topic is topic]


# ---------------------------------------------------------------------------------------------- envelope


class Envelope(BaseModel):
    """A CloudEvents 1.0 structured-mode event, exactly as it travels on a topic."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID
    source: Label
    type: Label
    time: datetime
    subject: Label
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]
    correlationid: Annotated[str, StringConstraints(max_length=CORRELATION_MAX_LENGTH)]
    causationid: Annotated[str, StringConstraints(max_length=CORRELATION_MAX_LENGTH)]

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a UTC offset (RFC 3339)")
        return value

    @classmethod
    def wrap(
        cls,
        event: BaseEvent,
        *,
        service: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        event_id: uuid.UUID | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        """Put an event in an envelope. A root event (a request) is its own correlation and causation."""
        own_id = event_id or uuid.uuid4()
        return cls(
            id=own_id,
            source=cls.source_of(service),
            type=event.type_name(),
            time=time or datetime.now(UTC),
            subject=event.subject,
            data=event.model_dump(mode="json"),
            correlationid=correlation_id or str(own_id),
            causationid=causation_id or correlation_id or str(own_id),
        )

    @staticmethod
    def source_of(service: str) -> str:
        return f"/iomki/{service}"

    def caused(self, event: BaseEvent, *, service: str, time: datetime | None = None) -> Envelope:
        """An event caused by this one: same correlation, this one's id as causation."""
        return Envelope.wrap(
            event, service=service, correlation_id=self.correlationid, causation_id=str(self.id), time=time
        )

    @property
    def key(self) -> bytes:
        return self.subject.encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def envelope_format(event_type: type[Event]) -> str:
    """A root event's envelope as a PostgreSQL `format()` pattern: the text `Envelope.wrap(...).to_bytes()` writes,
    for writers that build events by the thousand in one statement (the reports sweep, a KBLI table revision), where
    building each in Python would cost more than the rest of their work.

    Its arguments, in order: the event id (also the correlation and causation), the source, the type, the time,
    then the event's fields in the model's order (the first, `facility_id`, is the subject too). Ids and moments
    are given as text (the moments as the contract writes them), which needs no escaping; every other field (text,
    a number, a boolean, an enumeration's value, or one of these that may be None) as its JSON (`to_json`), `null`
    for None. tests/integration/test_reports_sweep.py and tests/integration/test_permits_sectors.py hold the result
    to the wrapped event, byte for byte."""
    data = []
    for number, (name, field) in enumerate(event_type.model_fields.items(), start=5):
        if field.annotation in (uuid.UUID, datetime):
            value = f'"%{number}$s"'
        elif _json_scalar(field.annotation):
            value = f"%{number}$s"
        else:
            raise TypeError(f"{event_type.__name__}.{name} is not a field an envelope pattern can hold")
        data.append(f'"{name}":{value}')
    return ('{"specversion":"1.0","id":"%1$s","source":"%2$s","type":"%3$s","time":"%4$s","subject":"%5$s",'
            f'"datacontenttype":"application/json","data":{{{",".join(data)}}},'
            '"correlationid":"%1$s","causationid":"%1$s"}')


def _json_scalar(annotation: Any) -> bool:
    """Text, a number, a boolean or an enumeration's value (its JSON is what `to_json` writes of it), or one of these
    that may be None (`null`)."""
    if get_origin(annotation) is Annotated:
        return _json_scalar(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        members = [member for member in get_args(annotation) if member is not type(None)]
        return len(members) == 1 and len(get_args(annotation)) == 2 and _json_scalar(members[0])
    if annotation in (str, int, bool):
        return True
    return isinstance(annotation, type) and issubclass(annotation, StrEnum)


# The largest message that can be an event of this contract. The largest events (an application with its
# KBLI codes and names) take a few KiB; anything far bigger is refused before it is parsed, so that no one
# can make a consumer parse and store megabytes.
MAX_EVENT_BYTES = 64 * 1024


class ContractViolation(Exception):
    """A message that is not a valid event of this contract: it belongs in the dead-letter topic.

    `reason` is the dead letter's short reason: `oversized` for a message over `MAX_EVENT_BYTES`, `forged` for an
    event its topic's owner did not speak, `invalid` for anything else; the message says precisely what is wrong."""

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class EventTooLarge(ContractViolation):
    """An event over `MAX_EVENT_BYTES`, refused where it is written: no consumer would accept it, and a broker
    refuses records over its own limit."""

    def __init__(self, event_type: str, size: int) -> None:
        super().__init__(f"a {event_type} event of {size:,} bytes is over the {MAX_EVENT_BYTES:,} bytes an event may "
                         "take", reason="oversized")
        self.event_type = event_type
        self.size = size


@dataclass(frozen=True)
class Decoded:
    envelope: Envelope
    event: BaseEvent


def _typed_envelope(type_name: str, event_type: type[BaseEvent]) -> type[Envelope]:
    """The envelope of one event type, its `data` that event: what lets a message be parsed in one pass."""
    kind: Any = Literal[type_name]  # a literal type made at run time, one per event type
    return create_model(f"{event_type.__name__}Envelope", __base__=Envelope, type=(kind, ...), data=(event_type, ...))


# Every valid event parsed and validated in one pass in pydantic-core, its envelope chosen by `type`: half the
# CPU of parsing the envelope and then validating its `data` again, the largest part of a consumer's own work.
_ANY_TYPED: Any = functools.reduce(operator.or_, (_typed_envelope(name, event_type)
                                                   for name, event_type in EVENT_TYPES.items()))
_ANY_TYPED_ENVELOPE: TypeAdapter[Envelope] = TypeAdapter(Annotated[_ANY_TYPED, Field(discriminator="type")])


def decode(raw: bytes | None) -> Decoded:
    """Parse a message value into its envelope and typed event, or say precisely why it is not one.

    The decoded envelope's `data` is the event itself (a typed subclass of `Envelope`)."""
    if not raw:
        raise ContractViolation("empty message value")
    if len(raw) > MAX_EVENT_BYTES:
        raise ContractViolation(f"message value of {len(raw)} bytes exceeds the {MAX_EVENT_BYTES} bytes an event "
                                "may take", reason="oversized")
    try:
        envelope = _ANY_TYPED_ENVELOPE.validate_json(raw)
    except ValidationError as exc:
        _explain_invalid(raw)
        raise ContractViolation(f"invalid event: {_brief(exc)}") from None  # should the two readings ever differ
    event: BaseEvent = envelope.data  # type: ignore[assignment]
    if event.subject != envelope.subject:
        raise ContractViolation("subject does not match the event's data (its plant, or its province for a PPKM "
                                "level)")
    return Decoded(envelope, event)


def _explain_invalid(raw: bytes) -> None:
    """Say precisely what is wrong with a message that failed to parse as an event: the envelope first, then its
    type, then its data, in the words of the part that failed (one pass's errors name union members instead)."""
    try:
        envelope = Envelope.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ContractViolation(f"value is not JSON: {first['msg']}") from None
        if first["type"] == "model_type" and not first["loc"]:
            raise ContractViolation("value is not a JSON object") from None
        raise ContractViolation(f"invalid CloudEvents envelope: {_brief(exc)}") from None
    event_type = EVENT_TYPES.get(envelope.type)
    if event_type is None:
        raise ContractViolation(f"unknown event type {envelope.type!r}")
    try:
        event_type.model_validate(envelope.data)
    except ValidationError as exc:
        raise ContractViolation(f"invalid {envelope.type} data: {_brief(exc)}") from None


def decode_record(topic: str, key: bytes | None, value: bytes | None) -> Decoded:
    """A message as consumed from `topic`: a valid event whose message key is its subject (the plant), which is
    what keeps one plant's events in one partition, in order; and an event its topic's owner speaks for, on its
    own topic with the owner's source, or it is `forged` (a service can only speak for itself)."""
    decoded = decode(value)
    envelope = decoded.envelope
    if key != envelope.key:
        raise ContractViolation("message key does not match subject" if key else "message has no key")
    home = EVENT_TYPES[envelope.type].topic
    if topic != home.name:
        raise ContractViolation(f"{envelope.type} belongs on {home.name}, not on {topic}", reason="forged")
    if envelope.source != Envelope.source_of(home.owner):
        raise ContractViolation(f"{envelope.type} comes from {Envelope.source_of(home.owner)}, not from "
                                f"{envelope.source[:200]}", reason="forged")
    return decoded


def _brief(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}" for error in exc.errors()
    )
