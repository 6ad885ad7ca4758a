-- The six read tables, built from the log by the projectors. Every row can be rebuilt from
-- ledger.events: times are the log's recorded times (epoch ms), never now() at projection.
-- `position` is the log position of the event that created the row (the tie-breaker of the
-- contract's orderings and of the /production/events cursor).

CREATE SCHEMA IF NOT EXISTS production;

CREATE TABLE production.sessions (
    id             text    PRIMARY KEY,
    session_id     text    NOT NULL,
    session_type   text    NOT NULL,
    status         text    NOT NULL,
    title          text,
    notes          text,
    director_mode  text,
    music_mode     text,
    project_slug   text,
    started_at     bigint  NOT NULL,
    metadata       jsonb,
    completed_at   bigint,
    created_at     bigint  NOT NULL,
    updated_at     bigint  NOT NULL,
    position       bigint  NOT NULL
);
CREATE INDEX sessions_status_started ON production.sessions (status, started_at);
CREATE INDEX sessions_type_started ON production.sessions (session_type, started_at);
CREATE INDEX sessions_project_started ON production.sessions (project_slug, started_at);

CREATE TABLE production.cameras (
    id                text              PRIMARY KEY,
    session_id        text              NOT NULL,
    camera_id         text              NOT NULL,
    device_name       text,
    source_type       text              NOT NULL,
    role              text              NOT NULL,
    priority_weight   double precision  NOT NULL,
    is_active         boolean           NOT NULL,
    is_wide_fallback  boolean,
    position_hint     text,
    metadata          jsonb,
    created_at        bigint            NOT NULL,
    updated_at        bigint            NOT NULL,
    position          bigint            NOT NULL,
    CONSTRAINT cameras_session_camera_key UNIQUE (session_id, camera_id)
);
CREATE INDEX cameras_session_role ON production.cameras (session_id, role);
CREATE INDEX cameras_session_active ON production.cameras (session_id, is_active);

CREATE TABLE production.director_events (
    id            text              PRIMARY KEY,
    event_id      text              NOT NULL,
    session_id    text              NOT NULL,
    timestamp_ms  bigint            NOT NULL,
    event_type    text              NOT NULL,
    camera_id     text,
    reason        text,
    score         double precision,
    metadata      jsonb,
    created_at    bigint            NOT NULL,
    updated_at    bigint            NOT NULL,
    position      bigint            NOT NULL
);
CREATE INDEX director_events_session_time
    ON production.director_events (session_id, timestamp_ms, position);
CREATE INDEX director_events_session_type
    ON production.director_events (session_id, event_type, timestamp_ms, position);
CREATE INDEX director_events_session_camera_time
    ON production.director_events (session_id, camera_id, timestamp_ms, position);

CREATE TABLE production.still_candidates (
    id                  text              PRIMARY KEY,
    session_id          text              NOT NULL,
    still_candidate_id  text              NOT NULL,
    camera_id           text              NOT NULL,
    timestamp_ms        bigint            NOT NULL,
    image_path          text,
    score               double precision  NOT NULL,
    pose_label          text,
    source_event_id     text,
    is_favorite         boolean           NOT NULL,
    selected_for_edit   boolean           NOT NULL,
    metadata            jsonb,
    created_at          bigint            NOT NULL,
    updated_at          bigint            NOT NULL,
    position            bigint            NOT NULL
);
CREATE INDEX still_candidates_session_score
    ON production.still_candidates (session_id, score DESC, timestamp_ms, position);
CREATE INDEX still_candidates_session_time
    ON production.still_candidates (session_id, timestamp_ms, position);
CREATE INDEX still_candidates_session_camera
    ON production.still_candidates (session_id, camera_id, score DESC, timestamp_ms);

CREATE TABLE production.music_moments (
    id                text              PRIMARY KEY,
    event_id          text              NOT NULL,
    session_id        text              NOT NULL,
    timestamp_ms      bigint            NOT NULL,
    section           text,
    tempo             double precision,
    confidence        double precision,
    phase             double precision,
    energy            double precision,
    motion_signature  text,
    audio_snapshot    jsonb,
    metadata          jsonb,
    created_at        bigint            NOT NULL,
    updated_at        bigint            NOT NULL,
    position          bigint            NOT NULL
);
CREATE INDEX music_moments_session_time
    ON production.music_moments (session_id, timestamp_ms, position);
CREATE INDEX music_moments_session_section ON production.music_moments (session_id, section);

CREATE TABLE production.assets (
    id          text    PRIMARY KEY,
    session_id  text    NOT NULL,
    asset_id    text    NOT NULL,
    asset_type  text    NOT NULL,
    path        text    NOT NULL,
    source      text,
    status      text,
    metadata    jsonb,
    created_at  bigint  NOT NULL,
    updated_at  bigint  NOT NULL,
    position    bigint  NOT NULL
);
CREATE INDEX assets_session_type ON production.assets (session_id, asset_type);
CREATE INDEX assets_session_created ON production.assets (session_id, created_at, position);

-- Where each projection stands, written in the same transaction as its rows.
CREATE TABLE production.projection_state (
    projection  text         PRIMARY KEY,
    position    bigint       NOT NULL,
    updated_at  timestamptz  NOT NULL
);
INSERT INTO production.projection_state (projection, position, updated_at)
SELECT name, 0, now()
  FROM unnest(ARRAY['sessions', 'cameras', 'director_events', 'still_candidates',
                    'music_moments', 'assets']) AS name;
