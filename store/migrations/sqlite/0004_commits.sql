-- Commit records (chaos-tests), for SQLite. The PostgreSQL migration of the
-- same number has the same table, columns and meaning.

-- Who committed each post written under a shard lease (a clustered node):
-- the lease's shard and epoch the write was fenced with, and the node that
-- held the lease then. The chaos harness reads it to check that no
-- fenced-off owner committed: one node per (shard, epoch), and epochs that
-- never go back in id order within a shard. Unfenced writes (one node,
-- SQLite) get no row.
CREATE TABLE post_commit (
    post  INTEGER PRIMARY KEY REFERENCES post (id) ON DELETE CASCADE,
    shard INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    node  TEXT    NOT NULL
);
