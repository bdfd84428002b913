-- What a warning was given for (WarningIssued.cause: a missed report or a capacity breach), kept with its pairing so
-- that the company's e-mail names it whichever half comes second, and when the warning's alert grouped others.
-- None for a freeze or a revocation, and for the warnings paired before (all of them for missed reports).
ALTER TABLE company_letters ADD COLUMN cause text;
