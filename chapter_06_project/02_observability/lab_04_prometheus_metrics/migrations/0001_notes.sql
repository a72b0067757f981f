-- The notes of the capstone service.
CREATE TABLE notes (
    id         BIGSERIAL PRIMARY KEY,
    title      TEXT        NOT NULL,
    body       TEXT        NOT NULL DEFAULT '',
    -- Optimistic concurrency: every UPDATE checks the version it read and bumps it.
    version    BIGINT      NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Unique titles are enforced by the database, not by a check-then-insert in the application:
-- two concurrent inserts of the same title cannot both succeed.
CREATE UNIQUE INDEX notes_title_key ON notes (title);
