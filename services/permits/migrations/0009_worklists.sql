-- The operators' worklists (GET /worklists): what waits for a decision, oldest first, nationally or by region.
-- Each kind is read from partial indexes on its pending rows alone, a few percent of the permits; requests and
-- objections carry their permit's region (as it was when they were filed: a plant does not move) for that.
CREATE INDEX permits_awaiting_decision ON permits (created_at, permit_id) WHERE status = 'SUBMITTED';
CREATE INDEX permits_awaiting_decision_province ON permits (province_code, created_at, permit_id)
    WHERE status = 'SUBMITTED';
CREATE INDEX permits_awaiting_decision_regency ON permits (regency_code, created_at, permit_id)
    WHERE status = 'SUBMITTED';

ALTER TABLE reactivation_requests ADD COLUMN province_code text, ADD COLUMN regency_code text;
UPDATE reactivation_requests r SET province_code = p.province_code, regency_code = p.regency_code
  FROM permits p WHERE p.permit_id = r.permit_id;
ALTER TABLE reactivation_requests ALTER COLUMN province_code SET NOT NULL, ALTER COLUMN regency_code SET NOT NULL;
CREATE INDEX reactivation_requests_pending ON reactivation_requests (requested_at, request_id)
    WHERE status = 'pending';
CREATE INDEX reactivation_requests_pending_province ON reactivation_requests (province_code, requested_at, request_id)
    WHERE status = 'pending';
CREATE INDEX reactivation_requests_pending_regency ON reactivation_requests (regency_code, requested_at, request_id)
    WHERE status = 'pending';

ALTER TABLE objections ADD COLUMN province_code text, ADD COLUMN regency_code text;
UPDATE objections o SET province_code = p.province_code, regency_code = p.regency_code
  FROM permits p WHERE p.permit_id = o.permit_id;
ALTER TABLE objections ALTER COLUMN province_code SET NOT NULL, ALTER COLUMN regency_code SET NOT NULL;
CREATE INDEX objections_pending_province ON objections (province_code, filed_at, seq) WHERE outcome IS NULL;
CREATE INDEX objections_pending_regency ON objections (regency_code, filed_at, seq) WHERE outcome IS NULL;
