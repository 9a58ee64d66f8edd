-- wani's schema for SQLite. The PostgreSQL migration of the same number has
-- the same tables, columns and meaning; only the types are spelled per backend.
-- Booleans are INTEGER 0/1 (sqlx's Any driver cannot read a column declared
-- BOOLEAN from SQLite); times are INTEGER milliseconds since the Unix epoch.
-- AUTOINCREMENT keeps ids from ever being reused after a delete: `>>123` must
-- never start pointing at a different post.

CREATE TABLE board (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 32),
    title          TEXT    NOT NULL DEFAULT '',
    rules          TEXT    NOT NULL DEFAULT '',
    max_threads    INTEGER NOT NULL DEFAULT 50,
    bump_limit     INTEGER NOT NULL DEFAULT 300,
    -- comma-separated MIME types
    mimetypes      TEXT    NOT NULL DEFAULT 'image/jpeg,image/png,image/gif,image/webp',
    max_file_bytes INTEGER NOT NULL DEFAULT 8388608
);

CREATE TABLE thread (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    board        INTEGER NOT NULL REFERENCES board (id),
    subject      TEXT,
    created      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    archived     INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    views        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX thread_board_bump ON thread (board, archived, last_updated DESC);

CREATE TABLE tag (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    bg_style   TEXT,
    text_style TEXT
);

CREATE TABLE thread_tag (
    thread INTEGER NOT NULL REFERENCES thread (id),
    tag    INTEGER NOT NULL REFERENCES tag (id),
    PRIMARY KEY (thread, tag)
);

CREATE TABLE media (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    blob           TEXT    NOT NULL,
    thumb_blob     TEXT    NOT NULL,
    mimetype       TEXT    NOT NULL,
    ext            TEXT    NOT NULL,
    is_animated    INTEGER NOT NULL DEFAULT 0 CHECK (is_animated IN (0, 1)),
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    thumb_width    INTEGER NOT NULL,
    thumb_height   INTEGER NOT NULL,
    size_bytes     INTEGER NOT NULL,
    thumb_mimetype TEXT    NOT NULL
);
CREATE INDEX media_blob ON media (blob);
CREATE INDEX media_thumb_blob ON media (thumb_blob);

CREATE TABLE poster (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    thread     INTEGER NOT NULL REFERENCES thread (id),
    hex_string TEXT    NOT NULL CHECK (length(hex_string) = 4),
    ip         TEXT    NOT NULL,
    UNIQUE (thread, ip)
);

CREATE TABLE post (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    thread          INTEGER NOT NULL REFERENCES thread (id),
    body            TEXT    NOT NULL CHECK (length(body) <= 4096),
    body_html       TEXT    NOT NULL,
    subject         TEXT,
    datetime        INTEGER NOT NULL,
    poster          INTEGER NOT NULL REFERENCES poster (id),
    media           INTEGER REFERENCES media (id),
    spoiler         INTEGER NOT NULL DEFAULT 0 CHECK (spoiler IN (0, 1)),
    sage            INTEGER NOT NULL DEFAULT 0 CHECK (sage IN (0, 1)),
    ip              TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL UNIQUE
);
CREATE INDEX post_thread_id ON post (thread, id);
-- Deleting a media row checks this foreign key; without the index that is a
-- scan of every post.
CREATE INDEX post_media ON post (media);

CREATE TABLE reply (
    reply_from INTEGER NOT NULL REFERENCES post (id),
    reply_to   INTEGER NOT NULL REFERENCES post (id),
    PRIMARY KEY (reply_from, reply_to)
);
CREATE INDEX reply_to_from ON reply (reply_to, reply_from);

-- Accounts and their sessions: present for the schema, unused for now.
CREATE TABLE slip (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 20),
    pass_hash TEXT    NOT NULL,
    is_admin  INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    is_mod    INTEGER NOT NULL DEFAULT 0 CHECK (is_mod IN (0, 1))
);

CREATE TABLE session (
    id      TEXT    PRIMARY KEY,
    slip    INTEGER NOT NULL REFERENCES slip (id),
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);

-- Cluster fencing: the owner of a shard holds (node, epoch); every fenced
-- write checks the epoch in its own transaction.
CREATE TABLE shard_lease (
    shard      INTEGER PRIMARY KEY,
    node       TEXT    NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Content-addressed bytes for the database blob backend.
CREATE TABLE blob (
    key   TEXT PRIMARY KEY,
    bytes BLOB NOT NULL
);

-- Small process-wide values (the poster-id secret).
CREATE TABLE setting (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
