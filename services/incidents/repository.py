"""Plain SQL for the incidents service; no SQL anywhere else in it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from services.incidents.domain import (
    Actor, Case, CaseLink, CaseStatus, Closure, ClosureStatus, Contact, ContactStatus, ContactTest, Outcome, Plant,
    Recommendation, RecommendationStatus, ContactTestResult, Timer, TimerKind, Verification,
)
from shared.contract import CaseLinkKind, CaseSource, ClosureAuthority, ClosureScope
from shared.storage.db import Connection
from shared.storage.unit_of_work import UnitOfWork

_PLANT = ("p.facility_id, p.permit_id, p.nib, p.province_code, p.regency_code, p.workforce_total, p.monitored,"
          " p.active_isolations, p.active_quarantines, p.active_room_closures, p.cases_total, p.contacts_total,"
          " p.status")
_CLOSURE = ("closure_id, facility_id, scope, reason, starts_at, ends_at, status, cluster_id, reopened_at,"
            " cleared_by, cleared_role, ordered_by, ordered_by_actor, recommendation_id")
_RECOMMENDATION = ("recommendation_id, facility_id, cluster_id, scope, days, rule, case_count, first_confirmed_on,"
                   " last_confirmed_on, recommended_at, answer_by, status, overdue_at, decided_at, decided_by,"
                   " decided_role, closure_id, ordered_scope, ordered_days, reason")
# The same columns, of the recommendations joined with their plants.
_RECOMMENDATION_R = ("r.recommendation_id, r.facility_id, r.cluster_id, r.scope, r.days, r.rule, r.case_count,"
                     " r.first_confirmed_on, r.last_confirmed_on, r.recommended_at, r.answer_by, r.status,"
                     " r.overdue_at, r.decided_at, r.decided_by, r.decided_role, r.closure_id, r.ordered_scope,"
                     " r.ordered_days, r.reason")
_CASE = ("case_id, facility_id, case_ref, confirmed_on, symptomatic, close_contacts, source, tested_on,"
         " isolation_starts_on, isolation_ends_on, status, recorded_by, recorded_role, cluster_id, closed_on,"
         " closed_by, closed_role, report_id, report_period_first, report_period_last, claimed_by, claimed_role,"
         " claimed_at, symptom_onset_on, verification, verified_by, verified_role, verified_at, follow_up_closed_by,"
         " follow_up_closed_role, follow_up_closed_at")
_CONTACT = ("contact_id, case_id, facility_id, number, last_exposure_on, exposure_assumed, quarantine_ends_on, status,"
            " entry_test_on, entry_test_result, exit_test_on, exit_test_result, left_on, became_case_id, recorded_by,"
            " recorded_role, recorded_at")


class IncidentRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # -- plants ------------------------------------------------------------------------------------

    async def plant(self, facility_id: uuid.UUID, *, for_update: bool = False) -> Plant | None:
        """A plant with its active plant closure. `for_update` serialises all writes about one plant."""
        lock = " FOR UPDATE OF p" if for_update else ""
        row = await self._connection.fetchrow(
            f"SELECT {_PLANT}, p.plant_closure_id FROM plants p WHERE p.facility_id = $1{lock}", facility_id)
        if row is None:
            return None
        closure = await self.closure(row["plant_closure_id"]) if row["plant_closure_id"] else None
        return Plant(row["facility_id"], row["permit_id"], row["nib"], row["province_code"], row["regency_code"],
                     row["workforce_total"], row["monitored"], row["active_isolations"], row["active_quarantines"],
                     row["active_room_closures"], closure)

    async def plant_summary(self, facility_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._connection.fetchrow(f"SELECT {_PLANT}, p.plant_closure_id FROM plants p"
                                              " WHERE p.facility_id = $1", facility_id)
        return dict(row) if row else None

    async def learn_plant(self, *, facility_id: uuid.UUID, permit_id: uuid.UUID, nib: str | None,
                          province_code: str, regency_code: str, workforce_total: int | None, now: datetime) -> None:
        await self.learn_plants([Plant(facility_id, permit_id, nib, province_code, regency_code, workforce_total)], now)

    async def learn_plants(self, facts: list[Plant], now: datetime) -> None:
        """Insert or refresh where plants are and whose they are, as permits (or, before them, reports: no NIB,
        no workforce) tell it, in one statement; what is only known from a report never erases it. Only those
        facts are written, not the rest of `Plant`. Of several facts about one plant the last wins, as if
        applied one by one."""
        latest = list({fact.facility_id: fact for fact in facts}.values())  # a statement touches a row once
        await self._connection.execute(
            "INSERT INTO plants (facility_id, permit_id, nib, province_code, regency_code, workforce_total,"
            " monitored, updated_at)"
            " SELECT facts.*, true, $7 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],"
            " $6::int[]) AS facts"
            " ON CONFLICT (facility_id) DO UPDATE SET permit_id = EXCLUDED.permit_id,"
            " nib = COALESCE(EXCLUDED.nib, plants.nib), province_code = EXCLUDED.province_code,"
            " regency_code = EXCLUDED.regency_code,"
            " workforce_total = COALESCE(EXCLUDED.workforce_total, plants.workforce_total),"
            " monitored = CASE WHEN EXCLUDED.nib IS NULL THEN plants.monitored ELSE true END,"
            " updated_at = EXCLUDED.updated_at",
            [fact.facility_id for fact in latest], [fact.permit_id for fact in latest], [fact.nib for fact in latest],
            [fact.province_code for fact in latest], [fact.regency_code for fact in latest],
            [fact.workforce_total for fact in latest], now,
        )

    async def stop_monitoring(self, facility_id: uuid.UUID, now: datetime) -> None:
        await self._connection.execute(
            "UPDATE plants SET monitored = false, updated_at = $2 WHERE facility_id = $1", facility_id, now)

    async def resume_monitoring(self, facility_id: uuid.UUID, permit_id: uuid.UUID, now: datetime) -> None:
        """The plant's permit is in force again: the one it holds now, whichever it held since."""
        await self._connection.execute(
            "UPDATE plants SET monitored = true, permit_id = $2, updated_at = $3 WHERE facility_id = $1",
            facility_id, permit_id, now)

    # -- cases -------------------------------------------------------------------------------------

    async def case(self, case_id: uuid.UUID) -> Case | None:
        row = await self._connection.fetchrow(f"SELECT {_CASE} FROM cases WHERE case_id = $1", case_id)
        return _case(row) if row else None

    async def case_ref_taken(self, facility_id: uuid.UUID, case_ref: str) -> bool:
        return bool(await self._connection.fetchval(
            "SELECT 1 FROM cases WHERE facility_id = $1 AND case_ref = $2", facility_id, case_ref))

    async def cases_between(self, facility_id: uuid.UUID, first: date, last: date) -> int:
        return await self._connection.fetchval(
            "SELECT count(*) FROM cases WHERE facility_id = $1 AND confirmed_on BETWEEN $2 AND $3",
            facility_id, first, last)

    async def isolating_on(self, facility_id: uuid.UUID, day: date) -> int:
        """The plant's cases isolating on that day, entered or placeholders: begun, and not yet ended (as closed,
        or as planned while still isolating)."""
        return await self._connection.fetchval(
            "SELECT count(*) FROM cases WHERE facility_id = $1 AND isolation_starts_on <= $2"
            " AND coalesce(closed_on, isolation_ends_on) > $2", facility_id, day)

    async def placeholders_to_complete(self, facility_id: uuid.UUID, limit: int) -> tuple[int, list[Case]]:
        """The plant's placeholders no entered case has claimed yet, how many and the first `limit` of them in the
        order they would be claimed (`PlaceholderClaim`)."""
        rows = await self._connection.fetch(
            f"SELECT {_CASE}, count(*) OVER () AS total FROM cases WHERE facility_id = $1 AND source = $2"
            " AND claimed_by IS NULL ORDER BY confirmed_on, case_ref LIMIT $3",
            facility_id, CaseSource.REPORT.value, limit)
        return (rows[0]["total"] if rows else 0), [_case(row) for row in rows]

    async def unclaimed_placeholders(self, facility_id: uuid.UUID) -> list[Case]:
        """Cases known only from a report's count that no entered case has claimed yet (`Case.is_placeholder`)."""
        rows = await self._connection.fetch(
            f"SELECT {_CASE} FROM cases WHERE facility_id = $1 AND source = $2 AND claimed_by IS NULL",
            facility_id, CaseSource.REPORT.value)
        return [_case(row) for row in rows]

    async def unclustered(self, facility_id: uuid.UUID, first: date, last: date) -> list[tuple[uuid.UUID, date]]:
        rows = await self._connection.fetch(
            "SELECT case_id, confirmed_on FROM cases WHERE facility_id = $1 AND cluster_id IS NULL"
            " AND confirmed_on BETWEEN $2 AND $3", facility_id, first, last)
        return [(row["case_id"], row["confirmed_on"]) for row in rows]

    # -- close contacts ----------------------------------------------------------------------------

    async def contact(self, contact_id: uuid.UUID) -> Contact | None:
        row = await self._connection.fetchrow(f"SELECT {_CONTACT} FROM contacts WHERE contact_id = $1", contact_id)
        return _contact(row) if row else None

    async def contacts_of(self, case_id: uuid.UUID, *, after: int = 0, limit: int | None = None) -> list[Contact]:
        """A case's line list in number order, from after the number `after`; all of it without a limit (at most
        `MAX_CONTACTS_PER_CASE`)."""
        rows = await self._connection.fetch(
            f"SELECT {_CONTACT} FROM contacts WHERE case_id = $1 AND number > $2 ORDER BY number LIMIT $3",
            case_id, after, limit)
        return [_contact(row) for row in rows]

    async def contact_tally(self, case_id: uuid.UUID) -> dict[str, Any]:
        """A case's contacts by status, and the last quarantine end of those still in it."""
        row = await self._connection.fetchrow(
            "SELECT count(*) FILTER (WHERE status = $2) AS quarantining,"
            " count(*) FILTER (WHERE status = $3) AS released, count(*) FILTER (WHERE status = $4) AS tested_positive,"
            " count(*) FILTER (WHERE exposure_assumed) AS exposure_assumed,"
            " max(quarantine_ends_on) FILTER (WHERE status = $2) AS last_quarantine_ends_on"
            " FROM contacts WHERE case_id = $1", case_id, ContactStatus.QUARANTINING.value,
            ContactStatus.RELEASED.value, ContactStatus.TESTED_POSITIVE.value)
        return dict(row or {})  # an aggregate: always one row

    async def tracing(self, *, province: str | None, regency: str | None, target: int) -> dict[str, Any]:
        """Cases and contacts traced in a region (the whole country without one), from the plants' totals, and how
        many of its plants with cases trace fewer contacts per case than `target`."""
        filters = [("province_code = {}", province), ("regency_code = {}", regency)]
        where = ["cases_total > 0"]
        args = _given(filters, where)
        args.append(target)
        row = await self._connection.fetchrow(
            "SELECT count(*) AS plants, coalesce(sum(cases_total), 0) AS cases,"
            " coalesce(sum(contacts_total), 0) AS contacts,"
            f" count(*) FILTER (WHERE contacts_total < ${len(args)} * cases_total) AS plants_below_target"
            f" FROM plants WHERE {' AND '.join(where)}", *args)
        return dict(row or {})  # an aggregate: always one row

    # -- links and possible clusters ---------------------------------------------------------------

    async def links_of(self, case_id: uuid.UUID) -> list[CaseLink]:
        """The case's links, either way round, oldest first."""
        rows = await self._connection.fetch(
            "SELECT case_id, linked_case_id, facility_id, kind, linked_by, linked_role, linked_at FROM case_links"
            " WHERE case_id = $1 UNION ALL SELECT case_id, linked_case_id, facility_id, kind, linked_by,"
            " linked_role, linked_at FROM case_links WHERE linked_case_id = $1 ORDER BY linked_at", case_id)
        return [CaseLink(row["case_id"], row["linked_case_id"], row["facility_id"], CaseLinkKind(row["kind"]),
                         Actor(row["linked_by"], row["linked_role"]), row["linked_at"]) for row in rows]

    async def plant_links(self, facility_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
        rows = await self._connection.fetch(
            "SELECT case_id, linked_case_id FROM case_links WHERE facility_id = $1", facility_id)
        return [(row["case_id"], row["linked_case_id"]) for row in rows]

    async def raised_cases(self, facility_id: uuid.UUID, first: date, last: date) -> set[uuid.UUID]:
        """The cases of possible clusters already raised at the plant that overlap those dates."""
        rows = await self._connection.fetch(
            "SELECT DISTINCT unnest(case_ids) AS case_id FROM possible_clusters WHERE facility_id = $1"
            " AND last_confirmed_on >= $2 AND first_confirmed_on <= $3", facility_id, first, last)
        return {row["case_id"] for row in rows}

    # -- closure recommendations ---------------------------------------------------------------------

    async def recommendation(self, recommendation_id: uuid.UUID) -> Recommendation | None:
        row = await self._connection.fetchrow(
            f"SELECT {_RECOMMENDATION} FROM closure_recommendations WHERE recommendation_id = $1", recommendation_id)
        return _recommendation(row) if row else None

    async def recommendations(self, *, region: str | None, status: str | None, after: uuid.UUID | None,
                              limit: int) -> list[tuple[Recommendation, str, str]]:
        """One keyset page in id order, each with its plant's province and regency; only the filters given enter
        the statement, as for `incidents`."""
        region_column = "regency_code" if region and "." in region else "province_code"
        filters = [(f"p.{region_column} = {{}}", region), ("r.status = {}", status),
                   ("r.recommendation_id > {}", after)]
        where = ["true"]
        args = _given(filters, where)
        args.append(limit)
        rows = await self._connection.fetch(
            f"SELECT {_RECOMMENDATION_R}, p.province_code, p.regency_code FROM closure_recommendations r"
            f" JOIN plants p USING (facility_id) WHERE {' AND '.join(where)}"
            f" ORDER BY r.recommendation_id LIMIT ${len(args)}", *args)
        return [(_recommendation(row), row["province_code"], row["regency_code"]) for row in rows]

    # -- closures ----------------------------------------------------------------------------------

    async def closure(self, closure_id: uuid.UUID) -> Closure | None:
        row = await self._connection.fetchrow(f"SELECT {_CLOSURE} FROM closures WHERE closure_id = $1", closure_id)
        return _closure(row) if row else None

    async def closure_region(self, closure_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self._connection.fetchrow(
            "SELECT c.facility_id, p.regency_code, p.nib FROM closures c JOIN plants p USING (facility_id)"
            " WHERE c.closure_id = $1", closure_id)
        return dict(row) if row else None

    # -- saving a decision -------------------------------------------------------------------------

    async def save(self, outcome: Outcome, now: datetime) -> None:
        """Everything one decision changed, in the caller's transaction (the events go to the outbox there)."""
        for cluster in outcome.clusters:
            await self._connection.execute(
                "INSERT INTO clusters (cluster_id, facility_id, case_count, first_confirmed_on, last_confirmed_on,"
                " declared_at, rule) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                cluster.cluster_id, cluster.facility_id, len(cluster.case_ids), cluster.first_confirmed_on,
                cluster.last_confirmed_on, cluster.declared_at, cluster.rule)
        for case in outcome.cases:
            await self._save_case(case, now)
        for cluster in outcome.clusters:
            await self._connection.execute(
                "UPDATE cases SET cluster_id = $1 WHERE case_id = ANY($2::uuid[])", cluster.cluster_id,
                cluster.case_ids)
        for link in outcome.links:
            await self._connection.execute(
                "INSERT INTO case_links (case_id, linked_case_id, facility_id, kind, linked_by, linked_role,"
                " linked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)", link.case_id, link.linked_case_id,
                link.facility_id, link.kind.value, link.linked_by.sub, link.linked_by.role, link.linked_at)
        for possible in outcome.possible_clusters:
            await self._connection.execute(
                "INSERT INTO possible_clusters (possible_cluster_id, facility_id, case_ids, first_confirmed_on,"
                " last_confirmed_on, raised_at) VALUES ($1, $2, $3, $4, $5, $6)", possible.possible_cluster_id,
                possible.facility_id, possible.case_ids, possible.first_confirmed_on, possible.last_confirmed_on,
                possible.raised_at)
        for closure in outcome.closures:
            await self._save_closure(closure)
        for recommendation in outcome.recommendations:
            await self._save_recommendation(recommendation)
        for contact in outcome.contacts:
            await self._save_contact(contact)
        if outcome.cancelled_timers:
            # SKIP LOCKED: a sweeper holding one of these timers waits for the plant lock held here; waiting
            # for it in turn would deadlock. It fires after this commits and finds its subject re-timed
            # (`Plant.end_isolation` and `end_quarantine` ignore a timer that no longer matches the end).
            await self._connection.execute(
                "UPDATE timers SET cancelled_at = $3 WHERE timer_id IN (SELECT t.timer_id FROM timers t"
                " JOIN unnest($1::text[], $2::uuid[]) AS c(kind, subject_id) USING (kind, subject_id)"
                " WHERE t.fired_at IS NULL AND t.cancelled_at IS NULL FOR UPDATE OF t SKIP LOCKED)",
                [kind.value for kind, _ in outcome.cancelled_timers],
                [subject for _, subject in outcome.cancelled_timers], now)
        if outcome.timers:
            await self._connection.executemany(
                "INSERT INTO timers (timer_id, kind, facility_id, subject_id, due_at) VALUES ($1, $2, $3, $4, $5)",
                [(t.timer_id, t.kind.value, t.facility_id, t.subject_id, t.due_at) for t in outcome.timers])
        plant = outcome.plant
        await self._connection.execute(
            "UPDATE plants SET active_isolations = $2, active_quarantines = $3, active_room_closures = $4,"
            " plant_closure_id = $5, status = $6, updated_at = $7,"
            " cases_total = (SELECT count(*) FROM cases WHERE facility_id = $1),"
            " contacts_total = (SELECT count(*) FROM contacts WHERE facility_id = $1) WHERE facility_id = $1",
            plant.facility_id, plant.active_isolations, plant.active_quarantines, plant.active_room_closures,
            plant.plant_closure.closure_id if plant.plant_closure else None, plant.status.value, now)

    async def _save_case(self, c: Case, now: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO cases (case_id, facility_id, case_ref, confirmed_on, symptomatic, close_contacts, source,"
            " tested_on, isolation_starts_on, isolation_ends_on, status, cluster_id, report_id, recorded_by,"
            " recorded_role, recorded_at, closed_on, closed_by, closed_role, report_period_first, report_period_last,"
            " claimed_by, claimed_role, claimed_at, symptom_onset_on, verification, verified_by, verified_role,"
            " verified_at, follow_up_closed_by, follow_up_closed_role, follow_up_closed_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,"
            "$27,$28,$29,$30,$31,$32)"
            " ON CONFLICT (case_id) DO UPDATE SET status = EXCLUDED.status, cluster_id = EXCLUDED.cluster_id,"
            " closed_on = EXCLUDED.closed_on, closed_by = EXCLUDED.closed_by, closed_role = EXCLUDED.closed_role,"
            # What a claim or a correction replaces (recorded_by/at stay: who reported it first).
            " case_ref = EXCLUDED.case_ref, confirmed_on = EXCLUDED.confirmed_on, symptomatic = EXCLUDED.symptomatic,"
            " close_contacts = EXCLUDED.close_contacts, tested_on = EXCLUDED.tested_on,"
            " isolation_starts_on = EXCLUDED.isolation_starts_on, isolation_ends_on = EXCLUDED.isolation_ends_on,"
            " claimed_by = EXCLUDED.claimed_by, claimed_role = EXCLUDED.claimed_role, claimed_at = EXCLUDED.claimed_at,"
            " symptom_onset_on = EXCLUDED.symptom_onset_on, verification = EXCLUDED.verification,"
            " verified_by = EXCLUDED.verified_by, verified_role = EXCLUDED.verified_role,"
            " verified_at = EXCLUDED.verified_at, follow_up_closed_by = EXCLUDED.follow_up_closed_by,"
            " follow_up_closed_role = EXCLUDED.follow_up_closed_role,"
            " follow_up_closed_at = EXCLUDED.follow_up_closed_at",
            c.case_id, c.facility_id, c.case_ref, c.confirmed_on, c.symptomatic, c.close_contacts, c.source.value,
            c.tested_on, c.isolation_starts_on, c.isolation_ends_on, c.status.value, c.cluster_id, c.report_id,
            c.recorded_by.sub, c.recorded_by.role, now, c.closed_on, *_actor_columns(c.closed_by),
            c.report_period[0] if c.report_period else None, c.report_period[1] if c.report_period else None,
            *_actor_columns(c.claimed_by), c.claimed_at, c.symptom_onset_on, c.verification.value,
            *_actor_columns(c.verified_by), c.verified_at, *_actor_columns(c.follow_up_closed_by),
            c.follow_up_closed_at)

    async def _save_contact(self, c: Contact) -> None:
        await self._connection.execute(
            f"INSERT INTO contacts ({_CONTACT}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)"
            " ON CONFLICT (contact_id) DO UPDATE SET last_exposure_on = EXCLUDED.last_exposure_on,"
            " exposure_assumed = EXCLUDED.exposure_assumed, quarantine_ends_on = EXCLUDED.quarantine_ends_on,"
            " status = EXCLUDED.status, entry_test_on = EXCLUDED.entry_test_on,"
            " entry_test_result = EXCLUDED.entry_test_result, exit_test_on = EXCLUDED.exit_test_on,"
            " exit_test_result = EXCLUDED.exit_test_result, left_on = EXCLUDED.left_on,"
            " became_case_id = EXCLUDED.became_case_id",
            c.contact_id, c.case_id, c.facility_id, c.number, c.last_exposure_on, c.exposure_assumed,
            c.quarantine_ends_on, c.status.value, *_test_columns(c.entry_test), *_test_columns(c.exit_test), c.left_on,
            c.became_case_id, c.recorded_by.sub, c.recorded_by.role, c.recorded_at)

    async def _save_closure(self, c: Closure) -> None:
        await self._connection.execute(
            f"INSERT INTO closures ({_CLOSURE}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)"
            " ON CONFLICT (closure_id) DO UPDATE SET ends_at = EXCLUDED.ends_at, status = EXCLUDED.status,"
            " reopened_at = EXCLUDED.reopened_at, cleared_by = EXCLUDED.cleared_by,"
            " cleared_role = EXCLUDED.cleared_role, ordered_by = EXCLUDED.ordered_by,"
            " ordered_by_actor = EXCLUDED.ordered_by_actor, recommendation_id = EXCLUDED.recommendation_id",
            c.closure_id, c.facility_id, c.scope.value, c.reason, c.starts_at, c.ends_at, c.status.value,
            c.cluster_id, c.reopened_at, *_actor_columns(c.cleared_by), c.ordered_by.value, c.ordered_by_actor,
            c.recommendation_id)

    async def _save_recommendation(self, r: Recommendation) -> None:
        await self._connection.execute(
            f"INSERT INTO closure_recommendations ({_RECOMMENDATION})"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)"
            " ON CONFLICT (recommendation_id) DO UPDATE SET status = EXCLUDED.status,"
            " overdue_at = EXCLUDED.overdue_at, decided_at = EXCLUDED.decided_at, decided_by = EXCLUDED.decided_by,"
            " decided_role = EXCLUDED.decided_role, closure_id = EXCLUDED.closure_id,"
            " ordered_scope = EXCLUDED.ordered_scope, ordered_days = EXCLUDED.ordered_days, reason = EXCLUDED.reason",
            r.recommendation_id, r.facility_id, r.cluster_id, r.scope.value, r.days, r.rule, r.case_count,
            r.first_confirmed_on, r.last_confirmed_on, r.recommended_at, r.answer_by, r.status.value, r.overdue_at,
            r.decided_at, *_actor_columns(r.decided_by),
            r.closure_id, r.ordered_scope.value if r.ordered_scope else None, r.ordered_days, r.reason)

    # -- durable timers ----------------------------------------------------------------------------

    async def claim_due_timer(self, now: datetime) -> Timer | None:
        """The earliest due timer no other sweeper holds; it stays locked until this transaction ends."""
        # A timer that failed waits for its next attempt (next_attempt_at), behind the timers due before then.
        row = await self._connection.fetchrow(
            "SELECT timer_id, kind, facility_id, subject_id, due_at, attempts FROM timers"
            " WHERE fired_at IS NULL AND cancelled_at IS NULL AND coalesce(next_attempt_at, due_at) <= $1"
            " ORDER BY coalesce(next_attempt_at, due_at) LIMIT 1 FOR UPDATE SKIP LOCKED", now)
        if row is None:
            return None
        return Timer(row["timer_id"], TimerKind(row["kind"]), row["facility_id"], row["subject_id"], row["due_at"],
                     row["attempts"])

    async def mark_fired(self, timer_id: uuid.UUID, now: datetime) -> None:
        await self._connection.execute("UPDATE timers SET fired_at = $2 WHERE timer_id = $1", timer_id, now)

    async def record_failed_attempt(self, timer: Timer, next_attempt_at: datetime, error: str) -> None:
        """`timer.attempts` counts this failure; a timer fired meanwhile by another sweeper is left as it is."""
        await self._connection.execute(
            "UPDATE timers SET attempts = $2, next_attempt_at = $3, last_error = $4"
            " WHERE timer_id = $1 AND fired_at IS NULL", timer.timer_id, timer.attempts, next_attempt_at, error)

    # -- lists -------------------------------------------------------------------------------------

    async def incidents(self, *, province: str | None, status: str | None, region: str | None, nib: str | None,
                        tenants_of: str | None, estate: str | None, after: uuid.UUID | None,
                        limit: int) -> list[dict[str, Any]]:
        """Plants that have had cases, one keyset page in facility order after `after`, each with its clusters and
        its plant closure in force.

        Only the filters given enter the statement, so that each shape is planned on its own partial index
        (migration 0003); `... $1 IS NULL OR ...` would be planned once for all shapes. A region is a
        province (it covers its regencies) or a regency. `tenants_of` is an estate company: its own plants and
        its confirmed tenants; `estate` only its tenants (both a few hundred at most, by migration 0005's index).
        """
        region_column = "regency_code" if region and "." in region else "province_code"
        filters = [("p.province_code = {}", province), ("p.status = {}", status), ("p.nib = {}", nib),
                   (f"p.{region_column} = {{}}", region),
                   ("(p.nib = {0} OR p.facility_id IN (SELECT facility_id FROM estate_tenancies"
                    " WHERE estate_nib = {0}))", tenants_of),
                   ("p.facility_id IN (SELECT facility_id FROM estate_tenancies WHERE estate_nib = {})", estate),
                   ("p.facility_id > {}", after)]
        where = ["p.cases_total > 0"]
        args = _given(filters, where)
        args.append(limit)
        rows = await self._connection.fetch(
            "SELECT p.facility_id, p.province_code, p.regency_code, p.status, p.active_isolations,"
            " p.active_quarantines, p.cases_total, p.monitored,"
            " (SELECT count(*) FROM clusters k WHERE k.facility_id = p.facility_id) AS clusters_total,"
            " (SELECT max(k.declared_at) FROM clusters k WHERE k.facility_id = p.facility_id) AS last_cluster_at,"
            " c.closure_id, c.starts_at AS closure_starts_at, c.ends_at AS closure_ends_at,"
            " c.cluster_id AS closure_cluster_id"
            # The page's own closures, each by its key (LIMIT keeps the planner from joining the whole table).
            " FROM plants p LEFT JOIN LATERAL (SELECT c.closure_id, c.starts_at, c.ends_at, c.cluster_id"
            " FROM closures c WHERE c.closure_id = p.plant_closure_id LIMIT 1) c ON true"
            f" WHERE {' AND '.join(where)} ORDER BY p.facility_id LIMIT ${len(args)}",
            *args)
        return [dict(row) for row in rows]

    # -- estates -----------------------------------------------------------------------------------

    async def confirm_tenancy(self, facility_id: uuid.UUID, *, estate_facility_id: uuid.UUID, estate_nib: str,
                              confirmed_at: datetime, now: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO estate_tenancies (facility_id, estate_facility_id, estate_nib, confirmed_at, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (facility_id) DO UPDATE SET"
            " estate_facility_id = $2, estate_nib = $3, confirmed_at = $4, recorded_at = $5",
            facility_id, estate_facility_id, estate_nib, confirmed_at, now)

    async def end_tenancy(self, facility_id: uuid.UUID, *, estate_facility_id: uuid.UUID) -> bool:
        """The tenancy in that estate ended; one in another estate, confirmed since, stays."""
        status = await self._connection.execute(
            "DELETE FROM estate_tenancies WHERE facility_id = $1 AND estate_facility_id = $2",
            facility_id, estate_facility_id)
        return status.endswith(" 1")

    async def estate_of(self, facility_id: uuid.UUID) -> str | None:
        """The NIB of the estate company that confirmed the plant as its tenant, if one did."""
        return await self._connection.fetchval(
            "SELECT estate_nib FROM estate_tenancies WHERE facility_id = $1", facility_id)


class IncidentsWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.incidents = IncidentRepository(connection)


def _actor(row: asyncpg.Record, sub: str, role: str) -> Actor | None:
    return Actor(row[sub], row[role]) if row[sub] else None


def _actor_columns(actor: Actor | None) -> tuple[str | None, str | None]:
    return (actor.sub, actor.role) if actor else (None, None)


def _test_columns(test: ContactTest | None) -> tuple[Any, str | None]:
    return (test.tested_on, test.result.value) if test else (None, None)


def _case(row: asyncpg.Record) -> Case:
    period = (row["report_period_first"], row["report_period_last"]) if row["report_period_first"] else None
    return Case(row["case_id"], row["facility_id"], row["case_ref"], row["confirmed_on"], row["symptomatic"],
                row["close_contacts"], CaseSource(row["source"]), row["tested_on"], row["isolation_starts_on"],
                row["isolation_ends_on"], CaseStatus(row["status"]), Actor(row["recorded_by"], row["recorded_role"]),
                row["cluster_id"], row["closed_on"], _actor(row, "closed_by", "closed_role"), row["report_id"], period,
                _actor(row, "claimed_by", "claimed_role"), row["claimed_at"], row["symptom_onset_on"],
                Verification(row["verification"]), _actor(row, "verified_by", "verified_role"), row["verified_at"],
                _actor(row, "follow_up_closed_by", "follow_up_closed_role"), row["follow_up_closed_at"])


def _contact(row: asyncpg.Record) -> Contact:
    return Contact(row["contact_id"], row["case_id"], row["facility_id"], row["number"], row["last_exposure_on"],
                   row["exposure_assumed"], row["quarantine_ends_on"], ContactStatus(row["status"]),
                   Actor(row["recorded_by"], row["recorded_role"]), row["recorded_at"], _test(row, "entry_test"),
                   _test(row, "exit_test"), row["left_on"], row["became_case_id"])


def _test(row: asyncpg.Record, kind: str) -> ContactTest | None:
    return ContactTest(row[f"{kind}_on"], ContactTestResult(row[f"{kind}_result"])) if row[f"{kind}_on"] else None


def _closure(row: asyncpg.Record) -> Closure:
    return Closure(row["closure_id"], row["facility_id"], ClosureScope(row["scope"]), row["reason"],
                   row["starts_at"], row["ends_at"], ClosureStatus(row["status"]), row["cluster_id"],
                   row["reopened_at"], _actor(row, "cleared_by", "cleared_role"), ClosureAuthority(row["ordered_by"]),
                   row["ordered_by_actor"], row["recommendation_id"])


def _recommendation(row: asyncpg.Record) -> Recommendation:
    return Recommendation(
        row["recommendation_id"], row["facility_id"], row["cluster_id"], ClosureScope(row["scope"]), row["days"],
        row["rule"], row["case_count"], row["first_confirmed_on"], row["last_confirmed_on"], row["recommended_at"],
        row["answer_by"], RecommendationStatus(row["status"]), row["overdue_at"], row["decided_at"],
        _actor(row, "decided_by", "decided_role"), row["closure_id"],
        ClosureScope(row["ordered_scope"]) if row["ordered_scope"] else None, row["ordered_days"], row["reason"])


def _given(filters: Sequence[tuple[str, object]], where: list[str]) -> list[object]:
    """The statement's parameters (of several types), one per filter whose value is given, in order; each such
    filter's condition joins `where` with its parameter's number."""
    args: list[object] = []
    for condition, value in filters:
        if value is not None:
            args.append(value)
            where.append(condition.format(f"${len(args)}"))
    return args
