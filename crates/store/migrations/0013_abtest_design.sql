-- How an A/B test rotates its variants (balanced | pacific_days | daily_alternation) and whether
-- it may stop as soon as its always-valid verdict is decided.
ALTER TABLE abtests ADD COLUMN design TEXT NOT NULL DEFAULT 'balanced';
ALTER TABLE abtests ADD COLUMN sequential {bool} NOT NULL DEFAULT FALSE;
