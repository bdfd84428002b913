-- The national task force's region is `ID`, the code its token carries (shared/regions.py), where the directory
-- named it with an empty code: one marker for the whole country everywhere.
UPDATE task_forces SET region_code = 'ID' WHERE region_code = '' AND level = 'national';
