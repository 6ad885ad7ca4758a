-- Least privilege: two group roles (NOLOGIN) that login roles are made members of.
--
--   motionledger_writer  what `serve` needs: append to the log and the dead letters, move the
--                        ingest checkpoint, and own the read tables (projections are rebuilt
--                        from the log, so they are the writer's to replace); never UPDATE,
--                        DELETE or TRUNCATE the log, with or without the triggers' help.
--   motionledger_reader  SELECT on the log, the dead letters and the read tables; nothing else.
--
-- Roles are cluster-wide while grants are per database, and many databases on one cluster
-- (every test's) run this file, possibly at the same moment: a role another database just
-- created is fine (duplicate_object, or unique_violation when both inserted at once).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'motionledger_writer') THEN
        CREATE ROLE motionledger_writer NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'motionledger_reader') THEN
        CREATE ROLE motionledger_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- Dead letters re-judged by `motionledger dead-letters replay`: each at most once, so a
-- replay run twice (or by two operators at once) cannot put the message on the stream twice.
-- Append-only like the log: it is the record of what an operator did.
CREATE TABLE ledger.replays (
    dead_letter_id  bigint      PRIMARY KEY,  -- ledger.dead_letters.id (no FK: see TRUNCATE)
    msg_id          text        NOT NULL,
    subject         text        NOT NULL,
    stream          text        NOT NULL,
    -- where the replayed message sits in the stream: its verdict is the log row or dead
    -- letter at this sequence (or neither, for a duplicate)
    stream_epoch    integer     NOT NULL,
    stream_seq      bigint      NOT NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    requested_by    text        NOT NULL DEFAULT current_user
);
CREATE TRIGGER replays_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger.replays
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
ALTER TABLE ledger.replays ENABLE ALWAYS TRIGGER replays_append_only;

-- Nothing on the log for anyone not granted below (PUBLIC has no table rights by default;
-- this states it).
REVOKE ALL ON ALL TABLES IN SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA production FROM PUBLIC;
REVOKE CREATE ON SCHEMA ledger FROM PUBLIC;

-- The writer: append-only on the log and dead letters; the checkpoint row it creates once
-- per stream and then moves (ledger.advance_checkpoint runs with the caller's rights).
GRANT USAGE ON SCHEMA ledger TO motionledger_writer;
GRANT SELECT, INSERT ON ledger.events, ledger.dead_letters TO motionledger_writer;
GRANT SELECT, INSERT, UPDATE ON ledger.ingest_state TO motionledger_writer;
-- `serve` checks that the schema is up to date before it starts
GRANT SELECT ON ledger.schema_migrations TO motionledger_writer;
-- `dead-letters replay` may run with the writer's rights too
GRANT SELECT, INSERT ON ledger.replays TO motionledger_writer;

-- The read tables belong to the writer: it fills them, and a rebuild builds shadow tables
-- beside them and swaps them in (CREATE on the schema, ownership to drop and rename).
GRANT USAGE, CREATE ON SCHEMA production TO motionledger_writer;
DO $$
DECLARE
    item record;
BEGIN
    FOR item IN
        SELECT c.relname, c.relkind FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'production' AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
    LOOP
        EXECUTE format(
            'ALTER %s production.%I OWNER TO motionledger_writer',
            CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                              WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
            item.relname
        );
    END LOOP;
END
$$;

-- The reader: everything readable, nothing writable.
GRANT USAGE ON SCHEMA ledger, production TO motionledger_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA ledger TO motionledger_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA production TO motionledger_reader;

-- Tables created later keep the same split: by later migrations (the role running them) ...
ALTER DEFAULT PRIVILEGES IN SCHEMA production
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON TABLES TO motionledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT ON TABLES TO motionledger_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA ledger GRANT SELECT ON TABLES TO motionledger_reader;
-- ... and by the writer itself (a rebuild's shadow tables, created under SET ROLE)
ALTER DEFAULT PRIVILEGES FOR ROLE motionledger_writer IN SCHEMA production
    GRANT SELECT ON TABLES TO motionledger_reader;
