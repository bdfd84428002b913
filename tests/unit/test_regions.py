"""Region codes as every service, the access layer and the CLI read them (shared/regions.py)."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import StringConstraints, TypeAdapter, ValidationError

from shared import regions
from shared.web.access import Principal, Role

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("region", "code", "covered"), [
    ("32", "32", True), ("32", "32.16", True), ("32.16", "32.16", True), ("ID", "32.16", True), ("ID", "91", True),
    ("32", "33.01", False), ("32.16", "32", False), ("32.1", "32.16", False), ("3", "32.16", False),
    ("32.16", "32.17", False),
])
def test_a_region_covers_itself_and_what_lies_within_it(region, code, covered):
    assert regions.covers(region, code) is covered


@pytest.mark.parametrize("code", ["32", "32.16", "ID"])
def test_a_task_force_holds_a_province_a_regency_or_the_nation(code):
    assert regions.is_region(code)


@pytest.mark.parametrize("code", ["", "3", "320", "32.1", "32.160", "32-16", "id", "ID.32", "32\n", "32.16\n",
                                  "\u0663\u0662", "3\u0662.16", "32.\uff11\uff16", " 32", "32 "])
def test_anything_else_is_not_a_region(code):
    assert not regions.is_region(code)


@pytest.mark.parametrize(("pattern", "good", "bad"), [
    (regions.PROVINCE_PATTERN, "32", ["3", "32.16", "\u0663\u0662", "ID"]),
    (regions.REGENCY_PATTERN, "32.16", ["32", "32.1", "3\u0662.16", "32.16 "]),
])
def test_the_patterns_the_apis_check_accept_ascii_codes_whole(pattern, good, bad):
    adapter = TypeAdapter(Annotated[str, StringConstraints(pattern=pattern)])  # as a `Query(pattern=...)` checks
    assert adapter.validate_python(good) == good
    for value in bad:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_the_access_layer_covers_as_the_regions_do():
    national = Principal(sub="satgas", role=Role.TASK_FORCE, region=regions.NATIONAL)
    province = Principal(sub="jabar", role=Role.TASK_FORCE, region="32")
    nobody = Principal(sub="ops", role=Role.OPERATOR)
    assert national.covers("94.01") and province.covers("32.16") and not province.covers("33.01")
    assert not nobody.covers("32.16")


def test_the_dataset_lists_the_38_provinces_and_each_provinces_own_regencies_for_pickers():
    dataset = regions.KemendagriRegions()
    provinces = dataset.provinces()
    assert len(provinces) == 38 and ("32", "Jawa Barat") in provinces
    assert [code for code, _ in provinces] == sorted(code for code, _ in provinces)
    west_java = dataset.regencies_of("32")
    assert ("32.16", "Kabupaten Bekasi") in west_java
    assert all(regions.is_regency(code) and code.startswith("32.") for code, _ in west_java)
    assert sum(len(dataset.regencies_of(code)) for code, _ in provinces) == 514
    assert dataset.regencies_of("32.16") == [] and dataset.regencies_of("99") == []
