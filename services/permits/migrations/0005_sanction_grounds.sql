-- Every freeze and revocation names its ground (a closed list, with its evidence), kept with its history row.
ALTER TABLE permit_history ADD COLUMN ground jsonb;

-- Sanctions recorded before grounds existed: the reports ladder's (role `system`, reason `<rule>: …`) were missed
-- reports; an officer's were stated in free text only, so they count as `other`, with that text.
UPDATE permit_history
   SET ground = CASE WHEN role = 'system'
                     THEN jsonb_build_object('code', 'missed_reports', 'rule', split_part(reason, ':', 1),
                                             'evidence', '{}'::jsonb)
                     ELSE jsonb_build_object('code', 'other', 'text', reason, 'evidence', '{}'::jsonb) END
 WHERE action IN ('freeze', 'revoke');

-- Sanctions counted by region, month (Jakarta time), action and ground as they are recorded, so that the ministry's
-- summary reads a few thousand rows whatever the number of permits.
CREATE TABLE sanction_counts (
    province_code text NOT NULL,
    regency_code  text NOT NULL,
    month         date NOT NULL,
    action        text NOT NULL,
    ground        text NOT NULL,
    sanctions     int NOT NULL CONSTRAINT sanction_counts_not_negative CHECK (sanctions >= 0),
    PRIMARY KEY (province_code, regency_code, month, action, ground)
);
-- A regency's task force reads its own rows.
CREATE INDEX sanction_counts_regency ON sanction_counts (regency_code, month, action, ground)
    INCLUDE (province_code, sanctions);

INSERT INTO sanction_counts (province_code, regency_code, month, action, ground, sanctions)
SELECT p.province_code, p.regency_code, date_trunc('month', h.at AT TIME ZONE 'Asia/Jakarta')::date, h.action,
       h.ground->>'code', count(*)
  FROM permit_history h JOIN permits p USING (permit_id)
 WHERE h.action IN ('freeze', 'revoke')
 GROUP BY 1, 2, 3, 4, 5;
