-- A deadline falling for every plant at once opens a million next periods and writes a million events in a
-- minute (`make bench`); every check and index entry on the way is paid per row.
--
-- The foreign key's check cost a query per opened period, a third of the statement. Periods are opened only by
-- this service, each from a schedule it has just added or holds locked, and schedules are never deleted (a
-- revoked permit's schedule is ended, not removed), so the check never had anything to find.
ALTER TABLE periods DROP CONSTRAINT periods_permit_id_fkey;

-- Ids the sweep gives new periods, warnings and events: random, but led by the time in milliseconds (the layout of UUID
-- version 7, RFC 9562). A million random ids land on a million random pages of their unique index, most not in
-- memory; ids that grow with time all land on its last page.
CREATE FUNCTION time_ordered_uuid() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(set_bit(set_bit(
        overlay(uuid_send(gen_random_uuid())
                PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
        52, 1), 53, 1), 'hex')::uuid
$$;
