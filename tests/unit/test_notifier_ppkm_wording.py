"""PPKM in the notifier: who hears of a capacity breach, a sector class change and a capacity-ground sanction, how
breaches group, and what each notice says (Bahasa Indonesia first, English second)."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.notifier.domain import (
    COMPANY_MESSAGES, LETTER_EVENTS, ROUTED, RULES, Alert, Channel, CompanyContact, CompanyLetter, Directory, Division,
    DivisionContact, EscalationChain, Grouping, Level, LetterStep, Plant, Subscription, TaskForce, alert_key,
    capacity_excess, company_message, company_notice, company_recipient, ppkm_level, recipients, render, route_for,
    sector_class, summary,
)
from shared.contract import (
    EVENT_TYPES, CapacityBreachDetected, CapacityExcess, CapacityMeasure, ClassBasis, GroundCode, PpkmLevel,
    SanctionAction, SanctionEvidence, SanctionRecommended, SectorClass, SectorClassChanged, Severity, WarningCause,
)

pytestmark = pytest.mark.unit

NOW = datetime(2021, 7, 20, 3, 0, tzinfo=UTC)
CHAIN = EscalationChain((timedelta(hours=1), timedelta(hours=4)))
GROUPING = Grouping(timedelta(hours=1))
CIKARANG = Plant(uuid.uuid4(), "32", "32.16")
PERMIT = uuid.uuid4()


def task_force(level: Level, region: str, *contacts: DivisionContact) -> TaskForce:
    return TaskForce.register(level=level, region_code=region, name=f"Satgas {region}", contacts=contacts)


BEKASI = task_force(Level.REGENCY, "32.16", DivisionContact(Division.HEALTH, email="kes@bekasi.example"),
                    DivisionContact(Division.LAW_ENFORCEMENT, email="satpolpp@bekasi.example"),
                    DivisionContact(Division.DATA_INFORMATION, email="data@bekasi.example"))
KARAWANG = task_force(Level.REGENCY, "32.15", DivisionContact(Division.LAW_ENFORCEMENT, email="pp@karawang.example"))
JABAR = task_force(Level.PROVINCE, "32", DivisionContact(Division.LAW_ENFORCEMENT, email="pp@jabar.example"))
COMPANY = CompanyContact(CIKARANG.facility_id, "8120000123456", "PT Tekstil Cikarang", "hse@tekstil.example")


def directory(*subscriptions: Subscription, company: CompanyContact | None = COMPANY) -> Directory:
    return Directory((BEKASI, KARAWANG, JABAR), subscriptions, company)


def breach(*excesses: CapacityExcess, level: PpkmLevel = PpkmLevel.LEVEL_4) -> CapacityBreachDetected:
    return CapacityBreachDetected(
        facility_id=CIKARANG.facility_id, province_code="32", regency_code="32.16", permit_id=PERMIT,
        breach_id=uuid.uuid4(), report_id=uuid.uuid4(), period_id=uuid.uuid4(), day=date(2021, 7, 20), level=level,
        rule_set="Inmendagri 22/2021", rule="L4-Export", sector_class=SectorClass.ESSENTIAL, export_oriented=True,
        excesses=list(excesses) or [CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, shift=1, cap=600,
                                                   count=900)])


def class_changed(basis: ClassBasis = ClassBasis.KBLI_TABLE, **changes) -> SectorClassChanged:
    fields = dict(facility_id=CIKARANG.facility_id, province_code="32", regency_code="32.16", permit_id=PERMIT,
                  nib="8120000123456", permit_number="IOMKI-2021-000123", sector_class=SectorClass.CRITICAL,
                  export_oriented=True, basis=basis, table_version="KBLI-2021.2",
                  reason="Kemenperin memperbarui daftar sektor kritikal")
    return SectorClassChanged(**{**fields, **changes})


def recommended(ground: GroundCode, action: SanctionAction = SanctionAction.FREEZE,
                ladder: str | None = "PPKM") -> SanctionRecommended:
    return SanctionRecommended(
        facility_id=CIKARANG.facility_id, province_code="32", regency_code="32.16", permit_id=PERMIT, action=action,
        rule="ThreeCapacityBreaches", ladder=ladder, ground=ground,
        evidence=SanctionEvidence(missed_periods=[uuid.uuid4()] * 2, warnings=[uuid.uuid4()] * 3,
                                  breaches=[uuid.uuid4()] * 3))


def raised(event, at: datetime = NOW) -> Alert:
    return Alert.raise_for(type(event).__name__, CIKARANG, event.model_dump(mode="json"), now=at, chain=CHAIN,
                           grouping=GROUPING)


def in_order(text: str, first: str, then: str) -> bool:
    return first in text and then in text and text.index(first) < text.index(then)


# -- routing ------------------------------------------------------------------------------------


def test_every_routed_event_is_one_the_contract_names():
    names = {event_type.__name__ for event_type in EVENT_TYPES.values()}
    assert ROUTED <= names
    assert {"CapacityBreachDetected", "SectorClassChanged"} <= ROUTED


def test_a_capacity_breach_goes_to_the_law_enforcement_division_of_the_plants_regency_only():
    route = route_for("CapacityBreachDetected")
    found = recipients(route, "CapacityBreachDetected", Level.REGENCY, CIKARANG, directory(), first_notice=True)
    # Not the health or data division, not Karawang next door, not the province, not the company (its warning is).
    assert {r.target for r in found} == {"satpolpp@bekasi.example"}
    assert {(r.kind, r.level) for r in found} == {("task_force", Level.REGENCY)}


def test_a_capacity_breach_is_low_and_never_escalates_like_the_sanctions():
    route = route_for("CapacityBreachDetected")
    assert route.severity is Severity.LOW == route_for("PermitFrozen").severity
    assert not route.company and not route.digest
    alert = raised(breach())
    assert (alert.level, alert.escalate_at) == (Level.REGENCY, None)
    assert alert.escalate(NOW + timedelta(days=7), CHAIN) is None


def test_a_subscribed_province_hears_of_breaches_too():
    feed = Subscription(uuid.uuid4(), JABAR.task_force_id, Channel.EMAIL, "ppkm@jabar.example",
                        frozenset({"CapacityBreachDetected"}))
    found = recipients(route_for("CapacityBreachDetected"), "CapacityBreachDetected", Level.REGENCY, CIKARANG,
                       directory(feed), first_notice=True)
    assert {r.target for r in found} == {"satpolpp@bekasi.example", "ppkm@jabar.example"}


def test_repeated_breaches_of_one_plant_within_the_window_are_one_alert_counted():
    first = raised(breach())
    assert first.alert_key == alert_key("CapacityBreachDetected", CIKARANG, NOW + timedelta(days=1))
    assert first.alert_key == f"CapacityBreachDetected:{CIKARANG.facility_id}"
    assert first.groups(NOW + GROUPING.window - timedelta(microseconds=1))
    assert not first.groups(NOW + GROUPING.window)  # the window's end opens a new alert
    again = first.repeated(NOW + timedelta(minutes=30))
    assert (again.count, again.alert_id) == (2, first.alert_id)
    other_plant = replace(CIKARANG, facility_id=uuid.uuid4())
    assert alert_key("CapacityBreachDetected", other_plant, NOW) != first.alert_key


def test_a_class_change_is_the_companys_alone_unless_a_task_force_subscribed():
    route = route_for("SectorClassChanged")
    assert (route.severity, route.division, route.company, route.digest) == (Severity.LOW, None, True, False)
    found = recipients(route, "SectorClassChanged", Level.REGENCY, CIKARANG, directory(), first_notice=True)
    assert [(r.kind, r.target) for r in found] == [("company", "hse@tekstil.example")]
    without_address = replace(COMPANY, email=None)
    assert recipients(route, "SectorClassChanged", Level.REGENCY, CIKARANG, directory(company=without_address),
                      first_notice=True) == []


def test_company_messages_are_routed_to_the_company_and_apart_from_the_lettered_events():
    assert COMPANY_MESSAGES == {"SectorClassChanged", "CaseDetected", "ClusterDeclared", "FacilityClosureOrdered",
                                "FacilityReopened"}
    assert all(rule.route.company for rule in RULES if rule.event_type in COMPANY_MESSAGES)
    assert not COMPANY_MESSAGES & LETTER_EVENTS
    assert company_recipient(route_for("SectorClassChanged"), directory()) is not None


def test_a_sanction_recommendation_alerts_only_those_subscribed_whatever_its_ground():
    assert "SanctionRecommended" not in ROUTED
    feed = Subscription(uuid.uuid4(), BEKASI.task_force_id, Channel.EMAIL, "sanksi@bekasi.example",
                        frozenset({"SanctionRecommended"}))
    found = recipients(route_for("SanctionRecommended"), "SanctionRecommended", Level.REGENCY, CIKARANG,
                       directory(feed), first_notice=True)
    assert [r.target for r in found] == ["sanksi@bekasi.example"]


# -- what a capacity breach's alert says --------------------------------------------------------


@pytest.mark.parametrize(("level", "indonesian", "english"), [
    (PpkmLevel.EMERGENCY, "PPKM Darurat", "the PPKM emergency stage"),
    (PpkmLevel.LEVEL_4, "PPKM Level 4", "PPKM level 4"), (PpkmLevel.LEVEL_3, "PPKM Level 3", "PPKM level 3"),
    (PpkmLevel.LEVEL_2, "PPKM Level 2", "PPKM level 2"), (PpkmLevel.LEVEL_1, "PPKM Level 1", "PPKM level 1")])
def test_every_ppkm_level_is_named_in_both_languages(level, indonesian, english):
    assert ppkm_level(level) == (indonesian, english)
    told = summary("CapacityBreachDetected", breach(level=level).model_dump(mode="json"))
    assert told is not None and f": {indonesian}," in told[0] and f": {english}," in told[1]


@pytest.mark.parametrize(("value", "export_oriented"), list(itertools.product(SectorClass, [False, True])))
def test_every_sector_class_is_named_with_its_export_orientation(value, export_oriented):
    indonesian, english = sector_class(value, export_oriented)
    assert indonesian.endswith(", berorientasi ekspor" if export_oriented else ", tidak berorientasi ekspor")
    assert english.endswith(", export-oriented" if export_oriented else ", not export-oriented")
    assert {"critical": "kritikal", "essential": "esensial", "non_essential": "non-esensial"}[value.value] in indonesian


@pytest.mark.parametrize(("excess", "indonesian", "english"), [
    (CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, shift=1, cap=600, count=601),
     "shift 1: 601 orang di lokasi, batas 600", "shift 1: 601 on site vs cap 600"),
    (CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, shift=8, cap=0, count=1),
     "shift 8: 1 orang di lokasi, batas 0", "shift 8: 1 on site vs cap 0"),
    (CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, cap=10, count=11),  # no shift named: the production floor
     "produksi: 11 orang di lokasi, batas 10", "production: 11 on site vs cap 10"),
    (CapacityExcess(measure=CapacityMeasure.ON_SITE_TOTAL, cap=1200, count=1201),
     "seluruh shift produksi: 1201 orang di lokasi, batas 1200", "all production shifts: 1201 on site vs cap 1200"),
    (CapacityExcess(measure=CapacityMeasure.SHIFT_COUNT, cap=1, count=2),
     "jumlah shift: 2, batas 1", "shifts run: 2 vs cap 1"),
    (CapacityExcess(measure=CapacityMeasure.OFFICE_ON_SITE, cap=10, count=25),
     "kantor: 25 orang di lokasi, batas 10", "offices: 25 on site vs cap 10"),
])
def test_each_excess_reads_count_against_cap(excess, indonesian, english):
    assert capacity_excess(excess) == (indonesian, english)


def test_every_measure_is_worded_apart():
    worded = {capacity_excess(CapacityExcess(measure=measure, cap=1, count=2)) for measure in CapacityMeasure}
    assert len(worded) == len(CapacityMeasure)


def test_a_breach_names_the_plant_the_level_the_rule_and_every_excess_bahasa_first():
    excesses = (CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, shift=1, cap=600, count=900),
                CapacityExcess(measure=CapacityMeasure.SHIFT_ON_SITE, shift=2, cap=600, count=650),
                CapacityExcess(measure=CapacityMeasure.OFFICE_ON_SITE, cap=10, count=25))
    indonesian, english = summary("CapacityBreachDetected", breach(*excesses).model_dump(mode="json")) or ("", "")
    assert indonesian.startswith(f"Pabrik {CIKARANG.facility_id} (izin {PERMIT}) di wilayah 32.16 melampaui batas "
                                 "kapasitas PPKM pada 2021-07-20: PPKM Level 4, aturan L4-Export "
                                 "(Inmendagri 22/2021), kelas esensial, berorientasi ekspor.")
    assert indonesian.splitlines()[1:] == ["- shift 1: 900 orang di lokasi, batas 600",
                                           "- shift 2: 650 orang di lokasi, batas 600",
                                           "- kantor: 25 orang di lokasi, batas 10"]
    assert english.startswith(f"Plant {CIKARANG.facility_id} (permit {PERMIT}) in 32.16 exceeded the PPKM staffing "
                              "cap on 2021-07-20: PPKM level 4, rule L4-Export (Inmendagri 22/2021), class essential, "
                              "export-oriented.")
    assert english.splitlines()[1:] == ["- shift 1: 900 on site vs cap 600", "- shift 2: 650 on site vs cap 600",
                                        "- offices: 25 on site vs cap 10"]


def test_the_breachs_email_reads_bahasa_then_english_before_the_alerts_facts():
    alert = raised(breach())
    subject, body = render(alert, Channel.EMAIL)
    text = body.decode()
    assert subject == "[iomki low] CapacityBreachDetected in 32.16"
    assert in_order(text, "melampaui batas kapasitas PPKM", "exceeded the PPKM staffing cap")
    assert in_order(text, "- shift 1: 900 orang di lokasi, batas 600", "- shift 1: 900 on site vs cap 600")
    assert in_order(text, "- shift 1: 900 on site vs cap 600", "Level: regency")
    assert "Acknowledge:" not in text  # low: nothing climbs


def test_the_breachs_webhook_carries_the_summary_bahasa_first_beside_the_details():
    alert = raised(breach())
    _, body = render(alert, Channel.WEBHOOK)
    document = json.loads(body)
    assert in_order(document["summary"], "Pabrik ", "\n\nPlant ")
    assert "- shift 1: 900 orang di lokasi, batas 600" in document["summary"]
    assert document["details"]["excesses"] == [{"measure": "shift_on_site", "shift": 1, "cap": 600, "count": 900}]
    assert body == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()  # signed byte for byte


def test_an_event_without_a_summary_is_rendered_as_before():
    alert = Alert.raise_for("PermitFrozen", CIKARANG, {"reason": "3 warnings"}, now=NOW, chain=CHAIN,
                            grouping=GROUPING)
    _, body = render(alert, Channel.WEBHOOK)
    assert "summary" not in json.loads(body)
    assert summary("PermitFrozen", {"reason": "3 warnings"}) is None
    assert summary("CapacityBreachDetected", {}) is None  # an alert stored without its details
    _, text = render(alert, Channel.EMAIL)
    assert text.decode().splitlines()[2] == "Level: regency"


# -- a capacity-ground sanction, for those subscribed to recommendations -------------------------


@pytest.mark.parametrize(("action", "indonesian", "english"), [
    (SanctionAction.FREEZE, "Rekomendasi pembekuan IOMKI", "A freeze of the permit is recommended"),
    (SanctionAction.REVOKE, "Rekomendasi pencabutan IOMKI", "A revocation of the permit is recommended")])
def test_a_capacity_ground_recommendation_names_repeated_breaches_not_missed_reports(action, indonesian, english):
    told = summary("SanctionRecommended", recommended(GroundCode.CAPACITY_BREACHES, action).model_dump(mode="json"))
    assert told is not None
    assert told[0].startswith(indonesian) and told[1].startswith(english)
    assert "atas dasar pelanggaran batas kapasitas PPKM berulang (3 pelanggaran): aturan ThreeCapacityBreaches, PPKM."\
        in told[0]
    assert "on the ground of repeated breaches of the PPKM staffing cap (3 breaches)" in told[1]
    assert "laporan" not in told[0] and "report" not in told[1]


def test_a_missed_reports_recommendation_says_so_and_one_of_old_names_no_ladder():
    missed = recommended(GroundCode.MISSED_REPORTS, ladder=None).model_dump(mode="json")
    del missed["ground"]  # published before the ground was named: missed reports
    told = summary("SanctionRecommended", missed)
    assert told is not None
    assert told[0].endswith("atas dasar laporan yang tidak disampaikan (2 periode): aturan ThreeCapacityBreaches.")
    assert told[1].endswith("on the ground of missed reports (2 periods): rule ThreeCapacityBreaches.")


def test_another_ground_is_named_by_its_code():
    told = summary("SanctionRecommended", recommended(GroundCode.OTHER).model_dump(mode="json"))
    assert told is not None and "atas dasar other:" in told[0] and "on the ground of other:" in told[1]


# -- the company's warning for a capacity breach --------------------------------------------------

LETTER = CompanyLetter("IOMKI-2021-000123/SP-2", "warning", NOW, b"%PDF-1.3 letter")
CAPACITY = WarningCause.CAPACITY_BREACH.value


def test_a_capacity_warnings_email_with_its_letter_says_what_it_warns_of_bahasa_first():
    subject, body = company_notice(LetterStep.SEND_WITH_LETTER, "WarningIssued", "PT Tekstil Cikarang", LETTER,
                                   CAPACITY)
    text = body.decode()
    assert subject == ("[IOMKI] Surat Peringatan IOMKI-2021-000123/SP-2 (batas kapasitas PPKM) / "
                       "Warning letter IOMKI-2021-000123/SP-2 (PPKM staffing cap)")
    assert text.startswith("Yth. Pimpinan PT Tekstil Cikarang,\n\nKami memberitahukan peringatan melampaui batas "
                           "kapasitas pekerja PPKM atas IOMKI IOMKI-2021-000123. Laporan perusahaan mencatat jumlah "
                           "pekerja di lokasi melebihi batas")
    assert in_order(text, "Surat Peringatan nomor IOMKI-2021-000123/SP-2 terlampir.",
                    "We notify you of a warning for exceeding the PPKM staffing cap (IOMKI-2021-000123). Your report "
                    "counted more staff on site than the PPKM rule in force")
    assert "The warning letter IOMKI-2021-000123/SP-2 is attached." in text


def test_a_capacity_warnings_email_without_its_letter_and_the_letter_following_name_the_cap():
    subject, body = company_notice(LetterStep.SEND_WITHOUT_LETTER, "WarningIssued", None, None, CAPACITY)
    assert subject == ("[IOMKI] Pemberitahuan peringatan melampaui batas kapasitas pekerja PPKM / "
                       "Notice of a warning for exceeding the PPKM staffing cap")
    assert in_order(body.decode(), "Laporan perusahaan mencatat", "Your report counted")
    _, late = company_notice(LetterStep.SEND_LETTER_ALONE, "WarningIssued", None, LETTER, CAPACITY)
    assert late.decode().count("Menyusul pemberitahuan kami tentang peringatan melampaui batas kapasitas pekerja "
                               "PPKM, Surat Peringatan nomor IOMKI-2021-000123/SP-2 terlampir.") == 1
    assert "Further to our notice of a warning for exceeding the PPKM staffing cap" in late.decode()


@pytest.mark.parametrize("step", [LetterStep.SEND_WITH_LETTER, LetterStep.SEND_WITHOUT_LETTER,
                                  LetterStep.SEND_LETTER_ALONE])
def test_a_missed_report_warning_reads_as_before_and_never_of_the_cap(step):
    letter = None if step is LetterStep.SEND_WITHOUT_LETTER else LETTER
    plain = company_notice(step, "WarningIssued", "PT A", letter)
    assert company_notice(step, "WarningIssued", "PT A", letter, WarningCause.MISSED_REPORT.value) == plain
    assert "PPKM" not in plain[0] + plain[1].decode()
    capacity = company_notice(step, "WarningIssued", "PT A", letter, CAPACITY)
    assert capacity != plain and "PPKM" in capacity[1].decode()


def test_a_cause_names_only_warnings():
    letter = CompanyLetter("IOMKI-2021-000123/SPB-1", "freeze", NOW, b"%PDF")
    assert (company_notice(LetterStep.SEND_WITH_LETTER, "PermitFrozen", None, letter, CAPACITY)
            == company_notice(LetterStep.SEND_WITH_LETTER, "PermitFrozen", None, letter))


# -- the company's e-mail about its sector class ------------------------------------------------


def test_a_class_change_from_the_table_tells_the_company_the_class_the_orientation_the_basis_and_why():
    subject, body = company_message("SectorClassChanged", class_changed().model_dump(mode="json"),
                                    "PT Tekstil Cikarang")
    text = body.decode()
    assert subject == "[IOMKI] Perubahan kelas sektor / Change of sector class"
    assert text.splitlines()[:6] == [
        "Yth. Pimpinan PT Tekstil Cikarang,", "",
        "Kelas sektor pabrik Anda (IOMKI-2021-000123) kini: kritikal, berorientasi ekspor.",
        "Dasar: revisi tabel KBLI (versi KBLI-2021.2).",
        "Alasan: Kemenperin memperbarui daftar sektor kritikal",
        "Kelas sektor menentukan berapa pekerja yang boleh bekerja di lokasi pada setiap level PPKM."]
    assert in_order(text, "Alasan:", "The sector class of your plant (IOMKI-2021-000123) is now: critical, "
                                     "export-oriented.")
    assert "Basis: a revision of the KBLI table (version KBLI-2021.2)." in text
    assert "Reason: Kemenperin memperbarui daftar sektor kritikal" in text


def test_a_class_an_operator_confirmed_says_it_was_the_companys_own_claim():
    changed = class_changed(ClassBasis.OPERATOR, sector_class=SectorClass.NON_ESSENTIAL, export_oriented=False,
                            permit_number=None, reason="  ")
    _, body = company_message("SectorClassChanged", changed.model_dump(mode="json"), None)
    text = body.decode()
    assert text.startswith("Yth. Pimpinan perusahaan,\n\nKelas sektor pabrik Anda (NIB 8120000123456) kini: "
                           "non-esensial, tidak berorientasi ekspor.\n"
                           "Dasar: konfirmasi operator atas klaim perusahaan Anda (tabel KBLI versi KBLI-2021.2).")
    assert in_order(text, "konfirmasi operator atas klaim perusahaan Anda",
                    "Basis: an operator's confirmation of your claim (KBLI table version KBLI-2021.2).")
    assert "Alasan" not in text and "Reason" not in text  # no reason given: no empty line for it


def test_a_class_changes_alert_for_a_subscribed_task_force_summarises_it():
    told = summary("SectorClassChanged", class_changed(ClassBasis.OPERATOR).model_dump(mode="json"))
    assert told == (
        f"Kelas sektor pabrik {CIKARANG.facility_id} (IOMKI-2021-000123) di wilayah 32.16 kini kritikal, "
        "berorientasi ekspor; dasar: konfirmasi operator atas klaim perusahaan (tabel KBLI versi KBLI-2021.2).",
        f"The sector class of plant {CIKARANG.facility_id} (IOMKI-2021-000123) in 32.16 is now critical, "
        "export-oriented; basis: an operator's confirmation of the company's claim (KBLI table version KBLI-2021.2).")
