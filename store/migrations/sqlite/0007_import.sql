-- Imports from another imageboard (`wani import maniwani`), for SQLite. The
-- PostgreSQL migration of the same number has the same table and meaning.

-- What an import made of each source row that does not keep its id in wani:
-- boards (a name clash renames them), slips and tags. A second run reads it
-- to import nothing twice. Posts and threads keep their ids; an imported
-- post's idempotency key (`<source>:<id>`) marks it.
CREATE TABLE import_map (
    source    TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    source_id INTEGER NOT NULL,
    wani_id   INTEGER NOT NULL,
    PRIMARY KEY (source, kind, source_id)
);
