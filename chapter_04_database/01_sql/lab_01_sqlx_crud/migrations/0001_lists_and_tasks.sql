-- Lists of tasks. A list holds at most `capacity` tasks: the repository enforces it in a
-- transaction (see `reserve_slot` in the solution), because a CHECK constraint cannot count rows.
CREATE TABLE lists (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    capacity INTEGER NOT NULL CHECK (capacity > 0)
);

CREATE TABLE tasks (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    list_id    BIGINT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    title      TEXT NOT NULL CHECK (title <> ''),
    done       BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Two tasks of one list cannot share a title; the same title in two lists is fine.
    UNIQUE (list_id, title)
);

-- The UNIQUE constraint above already gives an index on (list_id, title). Keyset pagination
-- reads `WHERE list_id = $1 AND id > $2 ORDER BY id LIMIT $3`: this index answers it without
-- a sort, whatever the page number.
CREATE INDEX tasks_list_id_id ON tasks (list_id, id);
