"""Sector classes from KBLI codes: the shipped table (every manufacturing division, its sources named), the longest
prefix that decides, the principal activity that is read, a table refused with every problem it has, the company's
claim against the table's reading, and the operator's review of it."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.permits.app import SECTOR_TABLE_FILE, sector_table
from services.permits.domain import (
    NOT_LISTED, ClassClaim, Classing, ClassReview, InvalidSectorTable, KbliSectorTable, Permit, PermitStatus,
    PrincipalActivity, ReviewAlreadyDecided, ReviewDecision, ReviewOrigin, ReviewStatus, SectorReading, SectorRow,
    TextMissing, accepted_claim_reason, first_reading_reason, revision_reason,
)
from shared.contract import REASON_MAX_LENGTH, ClassBasis, SectorClass

pytestmark = pytest.mark.unit

CRITICAL, ESSENTIAL, OTHER = SectorClass.CRITICAL, SectorClass.ESSENTIAL, SectorClass.NON_ESSENTIAL
NOW = datetime(2021, 7, 21, 3, 0, tzinfo=UTC)
SHIPPED = sector_table()


def a_table(*rows: tuple[str, SectorClass, bool], version: str = "t1") -> KbliSectorTable:
    return KbliSectorTable(version, "a test's lists", tuple(SectorRow(p, Classing(c, e)) for p, c, e in rows))


def toml(rows: str, head: str = 'version = "2021.9"\nsource = "Inmendagri 22/2021"\n') -> str:
    return head + rows


def row(prefix: object = '"10"', class_: object = '"critical"', export: object = "false", extra: str = "") -> str:
    return f"[[rows]]\nprefix = {prefix}\nclass = {class_}\nexport_oriented = {export}\n{extra}\n"


# -- the shipped table -----------------------------------------------------------------------------------------


def test_the_shipped_table_names_its_sources_and_its_version():
    assert SHIPPED.version == "2021.1"
    for named in ("15/2021", "22/2021", "Kementerian Perindustrian", "SE Menteri Perindustrian 3/2021"):
        assert named in SHIPPED.source, named
    assert len(SHIPPED.rows) == len({r.prefix for r in SHIPPED.rows})


def test_every_manufacturing_division_has_a_row_of_its_own_and_a_name():
    divisions = {r.prefix for r in SHIPPED.rows if len(r.prefix) == 2}
    assert divisions == {str(d) for d in range(10, 34)}
    assert all(r.name for r in SHIPPED.rows)


def test_each_group_of_rows_says_which_list_it_comes_from():
    text = SECTOR_TABLE_FILE.read_text(encoding="utf-8")
    groups = text.split("\n\n# -- ")[1:]
    assert len(groups) >= 10
    for group in groups:
        assert "[[rows]]" in group
        comment = group.split("[[rows]]")[0]
        assert any(source in comment.lower() for source in ("inmendagri", "ministry of industry", "not named")), comment


@pytest.mark.parametrize(("code", "expected"), [
    ("10110", (CRITICAL, False)),  # food (Inmendagri 15/2021 and 22/2021, sektor kritikal)
    ("10801", (CRITICAL, False)),  # animal feed, within food (22/2021)
    ("10431", (CRITICAL, True)),  # palm oil: 104 wins over 10
    ("11040", (CRITICAL, False)),  # beverages
    ("12011", (OTHER, False)),  # tobacco: named by none of the lists
    ("13112", (ESSENTIAL, True)),  # textiles
    ("14111", (ESSENTIAL, True)),  # apparel
    ("15201", (ESSENTIAL, True)),  # footwear
    ("16101", (ESSENTIAL, True)),  # wood
    ("17011", (ESSENTIAL, True)),  # pulp and paper
    ("17021", (CRITICAL, False)),  # paper packaging: 1702 wins over 17
    ("19211", (CRITICAL, False)),  # refined petroleum (energi)
    ("20111", (OTHER, False)),  # basic inorganic chemicals: not singled out
    ("20117", (CRITICAL, False)),  # petrochemicals: the 5-digit row itself
    ("20121", (CRITICAL, False)),  # fertilisers
    ("20131", (CRITICAL, False)),  # plastics in primary forms
    ("20231", (CRITICAL, False)),  # soap and household cleaners
    ("20232", (OTHER, False)),  # cosmetics, beside them: the 5-digit row does not reach it
    ("20301", (ESSENTIAL, True)),  # man-made fibres
    ("21012", (CRITICAL, False)),  # pharmaceuticals
    ("22111", (ESSENTIAL, True)),  # tyres: rubber
    ("22220", (OTHER, False)),  # plastics products
    ("23941", (CRITICAL, False)),  # cement
    ("23951", (CRITICAL, False)),  # concrete
    ("23121", (OTHER, False)),  # glass
    ("24101", (OTHER, False)),  # iron and steel
    ("26320", (ESSENTIAL, True)),  # electronics
    ("26600", (CRITICAL, False)),  # electromedical equipment
    ("29100", (OTHER, False)),  # motor vehicles
    ("31001", (ESSENTIAL, True)),  # furniture
    ("32502", (CRITICAL, False)),  # medical instruments
    ("32901", (OTHER, False)),
    ("33121", (OTHER, False)),
    ("01111", (OTHER, False)),  # not manufacturing: no row
    ("46100", (OTHER, False)),
])
def test_the_shipped_table_reads_each_sector_as_the_lists_do(code, expected):
    assert SHIPPED.read(code).classing == Classing(*expected)


# -- the longest prefix ----------------------------------------------------------------------------------------

TABLE = a_table(("10", CRITICAL, False), ("104", CRITICAL, True), ("1041", ESSENTIAL, False),
                ("10411", OTHER, True), ("13", ESSENTIAL, True))


@pytest.mark.parametrize(("code", "prefix"), [
    ("10110", "10"), ("10400", "104"), ("10419", "1041"), ("10411", "10411"), ("10412", "1041"), ("10499", "104"),
    ("13999", "13"), ("14000", None), ("01041", None), ("99999", None),
])
def test_the_longest_prefix_that_matches_decides(code, prefix):
    reading = TABLE.read(code)
    assert (reading.row.prefix if reading.row else None) == prefix
    assert reading.classing == (reading.row.classing if reading.row else NOT_LISTED)


def test_a_code_no_row_matches_is_non_essential_and_not_export_oriented():
    assert NOT_LISTED == Classing(SectorClass.NON_ESSENTIAL, False)
    assert a_table(("13", ESSENTIAL, True)).read("10110") == SectorReading(NOT_LISTED)


def test_only_prefixes_of_two_digits_or_more_are_read():
    table = a_table(("10", CRITICAL, False))
    assert table.read("1") == SectorReading(NOT_LISTED)
    assert table.read("10").classing == Classing(CRITICAL, False)


# -- the principal activity ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kbli", "expected"), [
    (["13112"], Classing(ESSENTIAL, True)),
    (["13112", "10110"], Classing(ESSENTIAL, True)),  # the first listed, as OSS orders them
    (["10110", "13112"], Classing(CRITICAL, False)),
    (["14000", "13112"], NOT_LISTED),  # a principal code no row matches is not rescued by the next one
    ([], NOT_LISTED),  # a plant recorded before codes were required
])
def test_the_plant_is_read_by_its_principal_kbli_code_alone(kbli, expected):
    assert PrincipalActivity(TABLE).derive(kbli).classing == expected


# -- a malformed table -----------------------------------------------------------------------------------------


def test_the_shipped_file_parses_to_the_table_the_service_uses():
    assert KbliSectorTable.from_toml(SECTOR_TABLE_FILE.read_text(encoding="utf-8")) == SHIPPED


@pytest.mark.parametrize(("text", "problem"), [
    (toml(row('"1"')), "row '1': prefix '1' is not 2 to 5 ASCII digits"),
    (toml(row('"123456"')), "prefix '123456' is not 2 to 5 ASCII digits"),
    (toml(row('"1a"')), "prefix '1a' is not"),
    (toml(row('"１０"')), "is not 2 to 5 ASCII digits"),  # full-width digits
    (toml(row("10")), "row 1: prefix 10 is not"),  # a number, not text: leading zeros would be lost
    (toml(row(class_='"vital"')), "row '10': class 'vital' is not one of critical, essential, non_essential"),
    (toml(row(class_='"Critical"')), "class 'Critical' is not one of"),
    (toml(row(export='"yes"')), "row '10': export_oriented 'yes' is not true or false"),
    (toml(row() + row()), "row '10': the prefix is listed twice"),
    (toml(row(extra='sector = "food"')), "row '10': unknown key 'sector'"),
    (toml(row(extra=f'name = "{"x" * 201}"')), "name is text of at most 200 characters"),
    (toml(row(), head='source = "x"\n'), "version None"),
    (toml(row(), head='version = "2021 rev"\nsource = "x"\n'), "version '2021 rev'"),
    (toml(row(), head='version = "2021.9"\n'), "source: name the lists"),
    (toml(row(), head='version = "2021.9"\nsource = "  "\n'), "source: name the lists"),
    (toml("", head='version = "2021.9"\nsource = "x"\nrows = []\n'), "no [[rows]]"),
    (toml(row(), head='version = "2021.9"\nsource = "x"\nlevels = 4\n'), "unknown key 'levels'"),
    ("version = ", "not TOML"),
])
def test_a_malformed_table_is_refused_saying_what_is_wrong(text, problem):
    with pytest.raises(InvalidSectorTable) as refused:
        KbliSectorTable.from_toml(text)
    assert any(problem in found for found in refused.value.problems), refused.value.problems
    assert str(refused.value).startswith("KBLI sector table: ")


def test_every_problem_of_a_table_is_named_at_once():
    text = toml(row('"1"') + row(class_='"vital"', extra='name = "x"') + row(class_='"vital"'), head="")
    with pytest.raises(InvalidSectorTable) as refused:
        KbliSectorTable.from_toml(text)
    assert len(refused.value.problems) == 6  # version, source, the bad prefix, two bad classes, the duplicate


def test_a_table_built_in_code_is_held_to_the_same_rules():
    with pytest.raises(InvalidSectorTable, match="listed twice"):
        a_table(("10", CRITICAL, False), ("10", OTHER, False))
    with pytest.raises(InvalidSectorTable, match="2 to 5 ASCII digits"):
        a_table(("101010", CRITICAL, False))
    with pytest.raises(InvalidSectorTable, match="version"):
        a_table(("10", CRITICAL, False), version="")


# -- the company's claim ---------------------------------------------------------------------------------------

CLASSES: list[SectorClass | None] = [None, *SectorClass]
EXPORTS: list[bool | None] = [None, True, False]
READINGS = [Classing(c, e) for c in SectorClass for e in (True, False)]


@pytest.mark.parametrize(("claimed_class", "claimed_export", "reading"),
                         list(itertools.product(CLASSES, EXPORTS, READINGS)))
def test_a_claim_is_reviewed_exactly_when_it_differs_from_the_tables_reading(claimed_class, claimed_export, reading):
    found = ClassClaim(claimed_class, claimed_export).against(reading)
    expected = Classing(claimed_class if claimed_class is not None else reading.sector_class,
                        claimed_export if claimed_export is not None else reading.export_oriented)
    assert found == (None if expected == reading else expected)


def test_no_claim_is_the_tables_reading():
    assert all(ClassClaim().against(reading) is None for reading in READINGS)


# -- the operator's review -------------------------------------------------------------------------------------


def a_permit(status: PermitStatus = PermitStatus.ISSUED) -> Permit:
    return Permit(uuid.uuid4(), uuid.uuid4(), "8120000123456", "PT Baja Nusantara", "32", "32.16", "non_essential",
                  1200, status, "IOMKI-2021-000123")


def a_review(permit: Permit) -> ClassReview:
    return ClassReview.open(permit, Classing(CRITICAL, False), Classing(OTHER, False), table_version="2021.1",
                            actor="k3-admin", now=NOW)


def test_a_review_is_opened_pending_with_the_claim_and_the_reading_it_disputes():
    permit = a_permit()
    review = a_review(permit)
    assert (review.permit_id, review.status, review.claimed, review.derived, review.origin, review.opened_by) == (
        permit.permit_id, ReviewStatus.PENDING, Classing(CRITICAL, False), Classing(OTHER, False),
        ReviewOrigin.APPLICATION, "k3-admin")
    with pytest.raises(ValueError, match="needs no review"):
        ClassReview.open(permit, Classing(OTHER, False), Classing(OTHER, False), table_version="2021.1",
                         actor="k3-admin", now=NOW)


def test_accepted_the_claim_becomes_the_plants_class_set_by_the_operator_over_the_table_in_force():
    permit = a_permit()
    decided, changed = a_review(permit).decide(ReviewDecision.ACCEPT, permit, reason="PEB 12 bulan terlampir",
                                               actor="officer-ani", role="operator", now=NOW, table_version="2021.2")
    assert (decided.status, decided.decided_by, decided.decided_role, decided.decided_at, decided.decision_reason) == (
        ReviewStatus.ACCEPTED, "officer-ani", "operator", NOW, "PEB 12 bulan terlampir")
    assert changed == replace(permit, sector_class="critical", export_oriented=False,
                              class_basis=ClassBasis.OPERATOR, class_table_version="2021.2")


def test_rejected_the_tables_class_stays():
    permit = a_permit()
    decided, changed = a_review(permit).decide(ReviewDecision.REJECT, permit, reason="KBLI utama industri logam",
                                               actor="officer-ani", role="operator", now=NOW, table_version="2021.1")
    assert decided.status is ReviewStatus.REJECTED and changed is None


def test_a_review_is_decided_once_with_reasons_and_about_its_own_permit():
    permit = a_permit()
    review = a_review(permit)
    decided, _ = review.decide(ReviewDecision.REJECT, permit, reason="tidak cukup", actor="a", role="operator",
                               now=NOW, table_version="2021.1")
    for decision in ReviewDecision:
        with pytest.raises(ReviewAlreadyDecided, match="already rejected"):
            decided.decide(decision, permit, reason="lagi", actor="a", role="operator", now=NOW,
                           table_version="2021.1")
    with pytest.raises(TextMissing) as missing:
        review.decide(ReviewDecision.ACCEPT, permit, reason=" . ", actor="a", role="operator", now=NOW,
                      table_version="2021.1")
    assert missing.value.field == "reason"
    with pytest.raises(ValueError, match="not about permit"):
        review.decide(ReviewDecision.ACCEPT, a_permit(), reason="ok", actor="a", role="operator", now=NOW,
                      table_version="2021.1")


@pytest.mark.parametrize(("status", "announced"), [(PermitStatus.SUBMITTED, False), (PermitStatus.ISSUED, True),
                                                    (PermitStatus.FROZEN, True), (PermitStatus.REJECTED, False),
                                                    (PermitStatus.REVOKED, False)])
def test_only_a_permit_that_operates_has_its_change_of_class_announced(status, announced):
    assert a_permit(status).announced is announced


def test_the_reasons_an_event_gives_are_bahasa_first_name_the_version_and_fit_the_contract():
    review = a_review(a_permit())
    longest = accepted_claim_reason(review, "x" * 1000)  # the API takes reasons of 1000 characters
    assert len(longest) <= REASON_MAX_LENGTH
    for reason in (revision_reason("2021.2"), first_reading_reason("2021.2")):
        indonesian, english = reason.split(" / ")
        assert "versi 2021.2" in indonesian and "version 2021.2" in english
    assert longest.startswith("Klaim kelas sektor perusahaan diterima operator")
