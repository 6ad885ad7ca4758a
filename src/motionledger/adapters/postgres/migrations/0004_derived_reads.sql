-- The derived reads (cut-log, hero-windows, alignment, asOf): what they probe so that a
-- window of a session with millions of director events is answered from indexes, never by
-- scanning the session. Indexes on the read tables are rebuilt by `rebuild` with them.

-- Cuts that name a camera, per camera in time order: where a camera is next (or was last)
-- cut to, one probe per camera, and the session's cameras by a skip scan.
CREATE INDEX director_events_cut_camera
    ON production.director_events (session_id, camera_id, timestamp_ms, position)
    WHERE event_type = 'cut' AND camera_id IS NOT NULL;
-- Events of a type in time order now carry their camera: the next cuts of a fast edit,
-- read without the heap (the same index, one column wider, rather than one more index).
DROP INDEX production.director_events_session_type;
CREATE INDEX director_events_session_type
    ON production.director_events (session_id, event_type, timestamp_ms, position)
    INCLUDE (camera_id);
-- The latest timestamp among the events logged in each block of 16384 positions: asOf
-- bounds every probe by the latest timestamp logged by then (one probe per block, and the
-- last block's entries up to the position), so events logged later are not stepped over.
CREATE INDEX director_events_session_block
    ON production.director_events (session_id, (position >> 14), timestamp_ms)
    INCLUDE (position);

-- A timeline asOf folds the rows that changed after asOf again from the log: a session's
-- session and camera events, and a still's events (all rare next to director events).
CREATE INDEX events_session_camera_lanes ON ledger.events (session_id, position)
    WHERE lane IN ('session', 'camera');
CREATE INDEX events_still_lane ON ledger.events (entity_id, position)
    WHERE lane = 'still';

-- The highest log position recorded at or before `as_of_ms` (epoch ms, recorded times
-- rounded down), 0 if none. Recorded times never go backwards along positions and
-- positions have no gaps, so a binary search over the primary key finds it: ~log2(head)
-- probes, and no index on recorded_at for the ingest to maintain.
CREATE FUNCTION ledger.position_at(as_of_ms bigint) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bound timestamptz := 'epoch'::timestamptz + (as_of_ms + 1) * interval '1 millisecond';
    lo bigint := 0;  -- recorded before the bound (0: before every position)
    hi bigint;       -- recorded at or after it (head + 1: after every position)
    mid bigint;
BEGIN
    SELECT coalesce(max(position), 0) + 1 INTO hi FROM ledger.events;
    WHILE hi - lo > 1 LOOP
        mid := lo + (hi - lo) / 2;
        IF (SELECT recorded_at FROM ledger.events WHERE position = mid) < bound THEN
            lo := mid;
        ELSE
            hi := mid;
        END IF;
    END LOOP;
    RETURN lo;
END
$$;
