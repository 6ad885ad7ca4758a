-- One verdict per eventId. An eventId is judged once: a copy that comes again gets the first
-- copy's verdict (a duplicate of a logged event, or the same rejection), and a copy with
-- another body is a conflict (`event_id_reused`). `dead-letters replay` is the one explicit
-- way to judge a rejected eventId again.
--
-- A dead letter that repeats an earlier one's verdict names it: such rows, and conflicts,
-- do not bind later copies; the binding verdict of a rejected eventId is its latest dead
-- letter that is neither (the first copy's, or a replay's), unless it was replayed since.

ALTER TABLE ledger.dead_letters ADD COLUMN repeat_of bigint;

-- The verdicts an eventId was given, binding ones only: the log row wins when there is one.
CREATE FUNCTION ledger.binding_rejections(p_ids text[])
RETURNS TABLE (event_id text, id bigint, raw bytea, reason text, detail text, field text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (d.event_id) d.event_id, d.id, d.raw, d.reason, d.detail, d.field
      FROM ledger.dead_letters d
     WHERE d.event_id = ANY(p_ids)
       AND d.repeat_of IS NULL
       AND d.reason <> 'event_id_reused'
       AND NOT EXISTS (SELECT 1 FROM ledger.replays r WHERE r.dead_letter_id = d.id)
     ORDER BY d.event_id, d.id DESC
$$;

-- The last line behind the judge (as the unique index on event_id is for logged ones): a
-- batch may not log an eventId that was rejected before. Called in the batch's transaction
-- with the eventIds it logs (replays left out: those are judged again on purpose).
CREATE FUNCTION ledger.assert_unjudged(p_ids text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p_ids) > 0 AND EXISTS (SELECT 1 FROM ledger.binding_rejections(p_ids)) THEN
        RAISE EXCEPTION 'an eventId of this batch was rejected before' USING ERRCODE = 'MLJDG';
    END IF;
END
$$;
