-- Media pipeline (issue 7): per-board limits on pixels, video duration and
-- animation frames, the "no reposts" flag, and what a video or animation
-- needs remembered. The PostgreSQL migration of the same number matches.

-- 0 means "no limit of the board's own" for max_pixels (the node's
-- media.max_pixels still applies), max_duration_secs and max_frames.
ALTER TABLE board ADD COLUMN max_pixels        INTEGER NOT NULL DEFAULT 40000000;
ALTER TABLE board ADD COLUMN max_duration_secs INTEGER NOT NULL DEFAULT 300;
ALTER TABLE board ADD COLUMN max_frames        INTEGER NOT NULL DEFAULT 1000;
ALTER TABLE board ADD COLUMN no_reposts        INTEGER NOT NULL DEFAULT 0 CHECK (no_reposts IN (0, 1));

-- Video length in milliseconds (0 for images); animation frames (1 for a still).
-- Kept so a duplicate upload, which reuses the stored row instead of being
-- decoded again, is still held to the board's limits.
ALTER TABLE media ADD COLUMN duration_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE media ADD COLUMN frames      INTEGER NOT NULL DEFAULT 1;
