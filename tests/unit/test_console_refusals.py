"""A service's refusal as the console shows it: each field's beside its input, worded in the reader's language by
its kind and bound, and a problem's title in the reader's language before the service's own detail."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from fastapi import Request

from services.console.backend import refusal
from services.console.web import Console, worded_errors, worded_problem
from shared.web.http import field_errors

pytestmark = pytest.mark.unit

ENVIRONMENTS = Console.environments_for()


def reader(locale: str) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(console=SimpleNamespace(environments=ENVIRONMENTS)))
    cookie = f"iomki_bahasa={locale}".encode()
    return Request({"type": "http", "app": app, "headers": [(b"cookie", cookie)]})


def answered(status: int, body: dict) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


INVALID = answered(422, {"title": "Invalid request", "detail": "One or more fields are invalid.",
                         "errors": field_errors([
    {"loc": ("body", "company", "nib"), "msg": "String should match pattern '^[0-9]{13}$'",
     "type": "string_pattern_mismatch", "ctx": {"pattern": "^[0-9]{13}$"}},
    {"loc": ("body", "facility", "name"), "msg": "String should have at most 200 characters",
     "type": "string_too_long", "ctx": {"max_length": 200}},
    {"loc": ("body", "workforce", "total"), "msg": "Input should be greater than or equal to 1000",
     "type": "greater_than_equal", "ctx": {"ge": 1000}},
    {"loc": ("body", "kbli", 3), "msg": "String should match pattern", "type": "string_pattern_mismatch"},
    {"loc": ("body", "declared_true"), "msg": "Pernyataan wajib dicentang / the declaration must be ticked",
     "type": "value_error"},
])})


def test_each_field_is_worded_in_indonesian_with_its_bound_written_the_indonesian_way():
    errors = worded_errors(reader("id"), refusal(INVALID), lists=("kbli",))
    assert errors == {
        "company.nib": "Formatnya tidak sesuai.",
        "facility.name": "Paling banyak 200 karakter.",
        "workforce.total": "Paling kecil 1.000.",
        "kbli": "Formatnya tidak sesuai.",  # a list's item under the list's one input
        "declared_true": "Pernyataan wajib dicentang / the declaration must be ticked",  # the domain's own words
    }


def test_in_english_the_same_fields_read_in_english():
    errors = worded_errors(reader("en"), refusal(INVALID))
    assert errors["facility.name"] == "At most 200 characters."
    assert errors["workforce.total"] == "At least 1,000."
    assert errors["kbli.3"] == "This is not in the expected format."


def test_a_problem_reads_in_the_readers_language_first_then_the_services_detail():
    late = refusal(answered(409, {"title": "Objection too late",
                                  "detail": "the objection window closed on 2026-12-01"}))
    assert worded_problem(reader("id"), late) == (
        "Batas waktu pengajuan keberatan telah lewat. (the objection window closed on 2026-12-01)")
    assert worded_problem(reader("en"), late) == (
        "The time for an objection has passed. (the objection window closed on 2026-12-01)")
    unknown = refusal(answered(409, {"title": "Something new", "detail": "a rule the console has no words for"}))
    assert worded_problem(reader("id"), unknown) == "a rule the console has no words for"


def test_a_refusal_naming_fields_leaves_the_form_no_problem_of_its_own_unless_asked():
    refused = refusal(INVALID)
    assert worded_problem(reader("id"), refused) is None
    assert worded_problem(reader("id"), refused, with_fields=True) == (
        "Sebagian isian tidak dapat diterima. (One or more fields are invalid.)")
    assert worded_errors(reader("id"), None) == {} and worded_problem(reader("id"), None) is None


def test_what_a_service_sends_is_bounded_and_a_bound_that_is_not_a_number_is_ignored():
    refused = refusal(answered(422, {"title": "Invalid request", "detail": "x" * 5000, "errors": [
        {"field": "f" * 500, "message": "m" * 5000, "type": "string_too_long", "limit": "200"},
        {"field": "g", "message": "too long", "type": "string_too_long", "limit": True}]}))
    assert len(refused.message) == 500
    (name, first), (_, second) = refused.fields.items()
    assert len(name) == 200 and len(first.message) == 300 and first.limit is None and second.limit is None
    # Without its bound the console cannot word it, so the service's message stands.
    assert worded_errors(reader("id"), refused)["g"] == "too long"
