-- The operators' worklists (GET /worklists): what waits for a decision, oldest first, nationally or by region.
-- Each is a partial index on the pending rows alone, a few percent of the permits.
CREATE INDEX permits_awaiting_decision ON permits (created_at, permit_id) WHERE status = 'SUBMITTED';
CREATE INDEX permits_awaiting_decision_province ON permits (province_code, created_at, permit_id)
    WHERE status = 'SUBMITTED';
CREATE INDEX permits_awaiting_decision_regency ON permits (regency_code, created_at, permit_id)
    WHERE status = 'SUBMITTED';
CREATE INDEX reactivation_requests_pending ON reactivation_requests (requested_at, request_id) WHERE status = 'pending';
