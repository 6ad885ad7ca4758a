-- The live session stream (GET /production/session/live): a client catching up reads its
-- session's log rows by position, page by page, from the position it resumes at. Without
-- this index every page would walk the whole log past that position (every session's
-- rows) to find one session's; with it, a page is one index range. It costs the ingest
-- one more index entry per event (bench/live.py measures the drain with and without it).
CREATE INDEX events_session_position ON ledger.events (session_id, position);
