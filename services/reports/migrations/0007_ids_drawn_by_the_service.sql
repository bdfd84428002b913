-- The sweep draws the ids of the periods, warnings and events it writes in Python (`time_ordered_ids`), a batch's
-- from one read of the system's random source: PostgreSQL's gen_random_uuid() reads it again for each id, 3 µs an
-- id on a server built without OpenSSL, two ids a period when a deadline falls for every plant at once.
DROP FUNCTION time_ordered_uuid();
