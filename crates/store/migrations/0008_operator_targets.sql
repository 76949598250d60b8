-- A target the operator tracks (the CLI without --user) is kept when its last user lets it go;
-- any other target stops then, so nobody's leftovers are checked for ever.
ALTER TABLE targets ADD COLUMN kept_by_operator {bool} NOT NULL DEFAULT FALSE;

-- Before this column, a channel that no user monitors, and a video that no user tracks and whose
-- channel is not tracked, were the operator's or left behind by their users: both keep running as
-- they did.
UPDATE targets SET kept_by_operator = TRUE
 WHERE (kind = 'channel' AND subject NOT IN (SELECT channel_id FROM user_channels))
    OR (kind = 'video' AND subject NOT IN (SELECT video_id FROM user_videos)
        AND subject NOT IN (SELECT v.id FROM videos v JOIN targets c ON c.kind = 'channel' AND c.subject = v.channel_id));
