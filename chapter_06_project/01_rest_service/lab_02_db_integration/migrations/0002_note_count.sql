-- `SELECT count(*) FROM notes` visits every row (PostgreSQL keeps no row count: under MVCC each
-- transaction may see a different number). With 100 000 notes it cost ~18 ms per listing and
-- capped GET /notes at ~160 req/s (see 03_performance/PERFORMANCE.md). The count is kept
-- here instead, maintained in the same transaction as each write, so it stays exact.
CREATE TABLE note_count (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one), -- a single row
    n   BIGINT  NOT NULL
);
INSERT INTO note_count (n) SELECT count(*) FROM notes;

-- Statement-level triggers with transition tables: one UPDATE per statement, not per row.
CREATE FUNCTION note_count_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE note_count SET n = n + (SELECT count(*) FROM new_rows);
    ELSE
        UPDATE note_count SET n = n - (SELECT count(*) FROM old_rows);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER notes_count_insert AFTER INSERT ON notes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_count_apply();
CREATE TRIGGER notes_count_delete AFTER DELETE ON notes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_count_apply();
