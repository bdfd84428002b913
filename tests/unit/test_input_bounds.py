"""No single record can halt a stream: every code is matched whole and in ASCII digits, every text and list has a
bound, and the OpenAPI documents and the event contract state those rules as the services enforce them.

"１２３４５" (full-width digits) matches `\\d{5}`, and Python's `$` matches before a final newline: both were ways
past the checks. Here each door is tried once with a value that used to pass."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from services.incidents.app import create_app as incidents_app
from services.incidents.domain import CaseReference, InvalidCase
from services.notifier.app import create_app as notifier_app
from services.permits.app import create_app as permits_app
from services.permits.domain import PERMIT_NUMBER, ApplicationRules, InvalidApplication
from services.reports.app import create_app as reports_app
from services.reports.domain import InvalidRegime, parse_regime
from services.supervision.app import create_app as supervision_app
from shared.contract import (
    KBLI_MAX_ITEMS, ContractViolation, Envelope, PermitApplied, SanctionEvidence, SectorClass, decode,
)
from shared.observability import Metrics
from shared.web.access import DEVELOPMENT_AUDIENCE, DEVELOPMENT_ISSUER, SUB_MAX_LENGTH, TokenVerifier
from shared.web.http import Problem, install_request_logging
from tests.support.permit_factories import Regions, an_application

pytestmark = pytest.mark.unit

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
FACILITY = uuid.uuid4()
SECRET = "input-bounds-secret-" + "z" * 32


def full_width(code: str) -> str:
    return code.translate(FULL_WIDTH)


# -- the event contract: what a consumer takes from a topic ------------------------------------------------------


def applied(**changes: Any) -> dict[str, Any]:
    """PermitApplied's data as the permits service writes it, with `changes` made to it."""
    event = PermitApplied(facility_id=FACILITY, province_code="32", regency_code="32.16", permit_id=uuid.uuid4(),
                          nib="8120000123456", company_name="PT Baja Nusantara", facility_name="Pabrik Cibitung",
                          kbli=["24101"], sector_class=SectorClass.CRITICAL, workforce_total=1200)
    return event.model_dump(mode="json") | changes


def message(data: dict[str, Any]) -> bytes:
    envelope = json.loads(Envelope.wrap(PermitApplied.model_validate(applied()), service="permits").to_bytes())
    return json.dumps(envelope | {"data": data}).encode()


@pytest.mark.parametrize(("changes", "field"), [
    ({"nib": full_width("8120000123456")}, "nib"),
    ({"nib": "8120000123456\n"}, "nib"),
    ({"kbli": [full_width("24101")]}, "kbli.0"),
    ({"kbli": ["24101\n"]}, "kbli.0"),
    ({"province_code": full_width("32")}, "province_code"),
    ({"regency_code": "32.16\n"}, "regency_code"),
    ({"company_name": "x" * 201}, "company_name"),
    ({"workforce_total": 2**31}, "workforce_total"),
    ({"workforce_total": -1}, "workforce_total"),
])
def test_a_consumer_refuses_a_code_in_other_digits_or_with_a_newline_and_a_value_past_its_bound(changes, field):
    with pytest.raises(ContractViolation) as refused:
        decode(message(applied(**changes)))
    assert refused.value.reason == "invalid"
    assert str(refused.value).startswith(f"invalid iomki.PermitApplied.v1 data: {field}:"), str(refused.value)


def test_a_list_of_kbli_codes_past_its_bound_is_refused_naming_the_field():
    # Each code two bytes ("1"), so the list stays under the size cap and the bound itself is what refuses it.
    with pytest.raises(ContractViolation, match=r"^invalid iomki.PermitApplied.v1 data: kbli: List should have "
                                                r"at most 8192 items"):
        decode(message(applied(kbli=["1"] * (KBLI_MAX_ITEMS + 1))))


def test_an_event_at_every_bound_the_api_sets_is_accepted():
    """Events are at least as wide as the HTTP models that feed them: what an API took, every consumer takes."""
    kbli = [f"{code:05d}" for code in range(20)]
    decoded = decode(message(applied(kbli=kbli, company_name="é" * 200, facility_name="x" * 200,
                                     workforce_total=10_000_000)))
    assert decoded.event.kbli == kbli  # type: ignore[attr-defined]


def test_a_sanctions_evidence_is_bounded():
    ids = [uuid.uuid4() for _ in range(1001)]
    with pytest.raises(ValueError, match="missed_periods\n  List should have at most 1000 items"):
        SanctionEvidence(missed_periods=ids, warnings=[])


def test_an_envelope_refuses_a_correlation_id_past_its_bound():
    document = json.loads(message(applied()))
    with pytest.raises(ContractViolation, match="^invalid CloudEvents envelope: correlationid: String should have at "
                                                "most 1024 characters"):
        decode(json.dumps(document | {"correlationid": "r" * 1025}).encode())


# -- the domains' own checks (Python's `re`) ---------------------------------------------------------------------


def errors_of(**changes: Any) -> dict[str, str]:
    with pytest.raises(InvalidApplication) as invalid:
        ApplicationRules(Regions()).check(an_application(**changes))
    return {e.field: e.message for e in invalid.value.errors}


@pytest.mark.parametrize(("changes", "field"), [
    ({"nib": full_width("8120000123456")}, "company.nib"),
    ({"nib": "8120000123456\n"}, "company.nib"),
    ({"kbli": [full_width("24101")]}, "kbli.0"),
    ({"kbli": ["24101\n"]}, "kbli.0"),
    ({"npwp": "01.234.567.8-901.000\n"}, "company.npwp"),
    ({"npwp": full_width("012345678901000")}, "company.npwp"),
    ({"province_code": full_width("32"), "regency_code": full_width("32.16")}, "facility.province_code"),
])
def test_the_permits_rules_refuse_other_digits_and_a_final_newline(changes, field):
    assert field in errors_of(**changes)


def test_the_npwp_forms_in_use_still_pass():
    for npwp in ("01.234.567.8-901.000", "012345678901000", "0012345678901000", "01 234 567 8 901 000"):
        ApplicationRules(Regions()).check(an_application(npwp=npwp))


def test_a_permit_number_is_matched_whole_and_may_outgrow_six_digits():
    assert PERMIT_NUMBER.fullmatch("IOMKI-2026-000123")
    assert PERMIT_NUMBER.fullmatch("IOMKI-2026-1000000")  # the millionth permit of a year
    assert not PERMIT_NUMBER.fullmatch("IOMKI-2026-000123\n")
    assert not PERMIT_NUMBER.fullmatch(full_width("IOMKI-2026-000123"))


def test_a_case_reference_with_a_final_newline_is_refused():
    assert CaseReference.check("C-2026-001") == "C-2026-001"
    with pytest.raises(InvalidCase) as refused:
        CaseReference.check("C-2026-001\n")
    assert refused.value.field == "case_ref"


@pytest.mark.parametrize("text", ["weekly:FRI@２３:５９", "every:３０s", "weekly:FRI@23:59x"])
def test_a_regime_is_read_in_ascii_digits_and_whole(text):
    with pytest.raises(InvalidRegime):
        parse_regime(text)


# -- tokens and request ids: what a caller sends besides the body ------------------------------------------------


def company_token(**claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "company-admin", "role": "company", "nib": "8120000123456", "iss": DEVELOPMENT_ISSUER,
            "aud": DEVELOPMENT_AUDIENCE, "iat": now, "exp": now + 600}
    return jwt.encode(base | claims, SECRET, algorithm="HS256")


@pytest.mark.parametrize(("claims", "detail"), [
    ({"nib": full_width("8120000123456")}, "its NIB claim must be 13 digits"),
    ({"nib": "8120000123456\n"}, "its NIB claim must be 13 digits"),
    ({"sub": "s" * (SUB_MAX_LENGTH + 1)}, "its subject is longer than 255 characters"),
    # A region is compared, never made into a pattern; still, what is not a region code goes no further.
    ({"role": "task_force", "region": "%"}, "its region must be a province or regency code, or ID for the country"),
    ({"role": "task_force", "region": "ID.x"}, "its region must be a province or regency code, or ID for the country"),
    ({"role": "task_force", "region": "32.16\n"},
     "its region must be a province or regency code, or ID for the country"),
])
async def test_a_token_whose_claims_could_not_be_the_caller_s_is_refused(claims, detail):
    with pytest.raises(Problem) as refused:
        await TokenVerifier.development(SECRET).verify(company_token(**claims))
    assert refused.value.status == 401
    assert refused.value.detail == f"The token is not valid: {detail}."


async def test_a_request_id_that_is_long_or_not_visible_ascii_is_replaced_by_a_fresh_one():
    app = FastAPI()
    install_request_logging(app, Metrics("test"))

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        async def echoed(request_id: str) -> str:
            return (await client.get("/ping", headers={"x-request-id": request_id})).headers["x-request-id"]

        assert await echoed("req-1") == "req-1"
        assert await echoed("r" * 200) == "r" * 200
        for hostile in ("r" * 201, "req 1", "req-1\t"):
            replaced = await echoed(hostile)
            assert replaced != hostile and str(uuid.UUID(replaced)) == replaced


# -- the OpenAPI documents state the bounds ------------------------------------------------------------------------


@pytest.fixture
def openapi(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], FastAPI]], dict[str, Any]]:
    monkeypatch.setenv("IOMKI_JWT_SECRET", SECRET)
    return lambda create_app: create_app().openapi()


def test_the_permits_document_states_patterns_lengths_and_counts(openapi):
    schemas = openapi(permits_app)["components"]["schemas"]
    application, company = schemas["ApplicationIn"]["properties"], schemas["Company"]["properties"]
    assert application["kbli"]["maxItems"] == 20 and application["kbli"]["minItems"] == 1
    assert application["kbli"]["items"] == {"type": "string", "maxLength": 32, "pattern": "^[0-9]{5}$"}
    assert company["nib"]["pattern"] == "^[0-9]{13}$" and company["nib"]["maxLength"] == 32
    assert company["npwp"]["pattern"] == "^[0-9](?:[ .-]?[0-9]){14,15}$"
    assert company["name"]["maxLength"] == 200
    facility = schemas["Facility"]["properties"]
    assert facility["province_code"]["pattern"] == "^[0-9]{2}$"
    assert facility["regency_code"]["pattern"] == r"^[0-9]{2}\.[0-9]{2}$"
    assert facility["address"]["maxLength"] == 500
    shifts = schemas["Workforce"]["properties"]["on_site_per_shift"]
    assert shifts["maxItems"] == 8 and shifts["items"]["maximum"] == 10_000_000


def test_the_permits_query_and_path_parameters_state_theirs(openapi):
    paths = openapi(permits_app)["paths"]
    search = {p["name"]: p["schema"] for p in paths["/permits"]["get"]["parameters"]}
    assert search["nib"]["anyOf"][0]["pattern"] == "^[0-9]{13}$"
    assert search["cursor"]["anyOf"][0]["maxLength"] == 64
    registry = paths["/registry/{permit_number}"]["get"]["parameters"][0]["schema"]
    assert registry["pattern"] == "^IOMKI-[0-9]{4}-[0-9]{6,10}$"


def test_the_other_services_documents_state_theirs(openapi):
    reports = openapi(reports_app)["components"]["schemas"]
    assert reports["Workforce"]["properties"]["on_site_per_shift"]["items"] == {
        "type": "integer", "minimum": 0, "maximum": 10_000_000}
    assert reports["ReportBody"]["properties"]["transport_modes"]["items"]["maxLength"] == 100
    case = openapi(incidents_app)["components"]["schemas"]["CaseIn"]["properties"]
    assert case["case_ref"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$"
    assert {"type": "integer", "minimum": 0, "maximum": 1000} in case["close_contacts"]["anyOf"]
    contacts = next(option for option in case["contacts"]["anyOf"] if option.get("type") == "array")
    assert contacts["maxItems"] == 1000
    notifier = openapi(notifier_app)["components"]["schemas"]
    contact = notifier["ContactIn"]["properties"]
    assert contact["email"]["anyOf"][0]["pattern"] == r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    assert contact["webhook"]["anyOf"][0] == {"type": "string", "maxLength": 2000, "pattern": r"^https?://\S+$"}
    assert contact["secret"]["anyOf"][0] == {"type": "string", "maxLength": 94,
                                             "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$"}
    assert notifier["SecretIn"]["properties"]["secret"] == contact["secret"]
    event_types = notifier["SubscriptionIn"]["properties"]["event_types"]
    assert event_types["items"]["maxLength"] == 64 and "PermitIssued" in event_types["items"]["enum"]
    assert notifier["TaskForceIn"]["properties"]["region_code"]["pattern"] == r"^(?:|ID|[0-9]{2}|[0-9]{2}\.[0-9]{2})$"


def test_no_string_or_list_in_any_request_body_is_unbounded(openapi):
    """The rule itself, over every request model of every service: a string has a length or a pattern (or is an
    enumeration or a format), a list a number of items."""
    unbounded = []
    for create_app in (permits_app, reports_app, incidents_app, notifier_app, supervision_app):
        for name, schema in openapi(create_app)["components"]["schemas"].items():
            for field, node in schema.get("properties", {}).items():
                for option in node.get("anyOf", [node]):
                    kind = option.get("type")
                    if kind == "string" and not ({"maxLength", "pattern", "enum", "format"} & option.keys()):
                        unbounded.append(f"{name}.{field}")
                    if kind == "array" and "maxItems" not in option:
                        unbounded.append(f"{name}.{field}")
    # Response models and FastAPI's own validation-error models are documented but never read from a request.
    assert [f for f in unbounded if not f.startswith(("HTTPValidationError", "ValidationError"))] == []
