-- The declaration of truth (SE 5/2021, issue #30): which regimes require a company to declare its report's data
-- true, and, on each report, who declared it (the caller's token subject) and when (the service's clock).

-- Stated on every regime. Existing rows: SE 8/2020 and SE 3/2021 asked for no declaration; SE 5/2021 and any
-- regime an operator scheduled after it require one, as the latest circular does.
ALTER TABLE regimes ADD COLUMN declaration boolean NOT NULL DEFAULT true;
UPDATE regimes SET declaration = false WHERE shipped AND name IN ('SE-8/2020', 'SE-3/2021');
ALTER TABLE regimes ALTER COLUMN declaration DROP DEFAULT;

-- Reports stored before this migration were never declared: both stay NULL.
ALTER TABLE reports ADD COLUMN declared_by text, ADD COLUMN declared_at timestamptz,
    ADD CONSTRAINT reports_declared_by_whom_and_when CHECK ((declared_by IS NULL) = (declared_at IS NULL));

-- A permit's declared reports (the evidence a finding in the field may contradict) are read through reports_permit:
-- under SE 5/2021 nearly every report is declared, so an index of its own would only slow each insert.
