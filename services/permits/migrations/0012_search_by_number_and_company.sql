-- GET /permits by company name: the name's start, in any case, however its words are spaced. The key is the
-- repository's `_COMPANY_KEY`, verbatim (the planner matches an expression index only on the same expression),
-- in code point order so that a prefix is one range of it; names are kept as the companies typed them.
-- By permit number, the search uses the number's UNIQUE index (0001).
CREATE INDEX permits_company_key_seq
    ON permits ((lower(btrim(regexp_replace(company_name, '\s+', ' ', 'g'))) COLLATE "C"), seq);
