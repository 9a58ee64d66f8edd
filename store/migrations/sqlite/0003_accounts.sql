-- Accounts, moderation and anti-abuse (issue 6), for SQLite. The PostgreSQL
-- migration of the same number has the same tables, columns and meaning.

-- Board volunteers: a slip that moderates only the boards listed here
-- (comma-separated board ids), beside the global is_admin / is_mod flags.
ALTER TABLE slip ADD COLUMN boards TEXT NOT NULL DEFAULT '';

-- Sessions: `id` holds the SHA-256 (hex) of the cookie token, never the token
-- itself; `csrf` is the per-session token mod forms carry.
ALTER TABLE session ADD COLUMN csrf TEXT NOT NULL DEFAULT '';
CREATE INDEX session_slip ON session (slip);

-- Who wrote a post: the slip (if posted with one), the name shown (slip
-- name, or `name !tripcode`), and the role badge.
ALTER TABLE post ADD COLUMN slip INTEGER REFERENCES slip (id);
ALTER TABLE post ADD COLUMN name TEXT;
ALTER TABLE post ADD COLUMN capcode TEXT;

-- Mod flags of a thread: stickies sort first, locked threads take replies
-- from mods only.
ALTER TABLE thread ADD COLUMN sticky INTEGER NOT NULL DEFAULT 0 CHECK (sticky IN (0, 1));
ALTER TABLE thread ADD COLUMN locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1));

-- Per-board anti-abuse settings. Captcha is on for new threads by default.
ALTER TABLE board ADD COLUMN captcha_threads INTEGER NOT NULL DEFAULT 1 CHECK (captcha_threads IN (0, 1));
ALTER TABLE board ADD COLUMN captcha_replies INTEGER NOT NULL DEFAULT 0 CHECK (captcha_replies IN (0, 1));
ALTER TABLE board ADD COLUMN thread_interval_secs INTEGER NOT NULL DEFAULT 60;
ALTER TABLE board ADD COLUMN reply_interval_secs INTEGER NOT NULL DEFAULT 10;

-- Bans by address or range (`cidr` is canonical text, e.g. 10.0.0.0/8 or
-- 2001:db8::/64); board NULL means every board; expires NULL means never.
CREATE TABLE ban (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    cidr    TEXT    NOT NULL,
    board   INTEGER REFERENCES board (id),
    reason  TEXT    NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER,
    slip    INTEGER REFERENCES slip (id),
    post    INTEGER
);

-- The moderation log: who did what, when and why. `target` is free text
-- ("post 12", "thread 3 -> /tech/") so entries outlive what they name.
CREATE TABLE modlog (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    slip      INTEGER REFERENCES slip (id),
    slip_name TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    board     INTEGER,
    target    TEXT    NOT NULL,
    reason    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX modlog_at ON modlog (at DESC);

-- Reports: one row per reported post; duplicates fold into `count`.
-- No foreign key on `post`: deleting a post deletes its report explicitly.
CREATE TABLE report (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    post     INTEGER NOT NULL UNIQUE,
    thread   INTEGER NOT NULL,
    board    INTEGER NOT NULL,
    reason   TEXT    NOT NULL,
    count    INTEGER NOT NULL DEFAULT 1,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL
);
CREATE INDEX report_board ON report (board, last_at DESC);
