-- The log: every accepted event once, at a gap-free position, and every rejected message
-- whole. Both tables are append-only, enforced by the database for every role.

CREATE SCHEMA IF NOT EXISTS ledger;

CREATE TABLE ledger.events (
    -- assigned by the single writer inside its transaction: gap-free, in commit order
    position      bigint      PRIMARY KEY CHECK (position > 0),
    event_id      text        NOT NULL,
    lane          text        NOT NULL,
    type          text        NOT NULL,
    session_id    text        NOT NULL,
    -- cameraId / stillCandidateId / assetId: what the judge looks entities up by
    entity_id     text,
    timestamp_ms  bigint,
    recorded_at   timestamptz NOT NULL,
    body          jsonb       NOT NULL,
    -- where the message sat in the stream (epoch counts stream re-creations)
    stream_epoch  integer     NOT NULL,
    stream_seq    bigint      NOT NULL,
    published_at  timestamptz NOT NULL,
    -- sha256(previous hash || position || eventId || canonical body): tamper evidence
    hash          bytea       NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_seq_key UNIQUE (stream_epoch, stream_seq)
);

-- The judge's rules, held by the database too: a second creation cannot be written even
-- if the judge were wrong. They double as the look-ups the judge's facts come from.
CREATE UNIQUE INDEX events_session_started ON ledger.events (session_id)
    WHERE type = 'session.started';
CREATE UNIQUE INDEX events_still_created ON ledger.events (entity_id)
    WHERE type = 'still.created';
CREATE UNIQUE INDEX events_asset_created ON ledger.events (entity_id)
    WHERE type = 'asset.created';
CREATE INDEX events_camera_upserted ON ledger.events (session_id, entity_id)
    WHERE type = 'camera.upserted';

CREATE TABLE ledger.dead_letters (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject       text        NOT NULL,
    headers       jsonb       NOT NULL,
    raw           bytea       NOT NULL,
    reason        text        NOT NULL,
    detail        text        NOT NULL,
    field         text,
    -- what could be read from the body, for finding it again (null when unreadable)
    event_id      text,
    session_id    text,
    type          text,
    received_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    stream_epoch  integer     NOT NULL,
    stream_seq    bigint      NOT NULL,
    CONSTRAINT dead_letters_stream_seq_key UNIQUE (stream_epoch, stream_seq)
);
CREATE INDEX dead_letters_reason ON ledger.dead_letters (reason, id);
CREATE INDEX dead_letters_session ON ledger.dead_letters (session_id, id);
CREATE INDEX dead_letters_event_id ON ledger.dead_letters (event_id);

-- Where ingestion stands in each stream, written in the same transaction as the rows.
CREATE TABLE ledger.ingest_state (
    stream          text        PRIMARY KEY,
    epoch           integer     NOT NULL,
    stream_created  text        NOT NULL,
    stream_seq      bigint      NOT NULL,
    duplicates      bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL
);

-- Moves the checkpoint of a stream from `from_seq` to `to_seq`, or raises if another writer
-- moved it first (compare-and-set): the fence that keeps a deposed writer from committing.
CREATE FUNCTION ledger.advance_checkpoint(
    p_stream text, p_epoch integer, p_from bigint, p_to bigint, p_duplicates bigint
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger.ingest_state
       SET stream_seq = p_to, duplicates = duplicates + p_duplicates, updated_at = now()
     WHERE stream = p_stream AND epoch = p_epoch AND stream_seq = p_from;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'checkpoint of % moved away from %', p_stream, p_from
            USING ERRCODE = 'MLCKP';
    END IF;
END
$$;

CREATE FUNCTION ledger.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the log is immutable; corrections are new events';
END
$$;

-- Statement-level, so an UPDATE or DELETE matching no row is refused too; ENABLE ALWAYS,
-- so session_replication_role = replica does not switch them off.
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger.events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
ALTER TABLE ledger.events ENABLE ALWAYS TRIGGER events_append_only;

CREATE TRIGGER dead_letters_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger.dead_letters
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
ALTER TABLE ledger.dead_letters ENABLE ALWAYS TRIGGER dead_letters_append_only;
