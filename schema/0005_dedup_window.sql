-- Deduplication of retried inserts: a collector sends each batch with an
-- insert_deduplication_token, so that a batch retried after a timeout or a restart (its spool)
-- is stored once. A plain MergeTree only remembers the last N inserted blocks when this window
-- is set (ReplicatedMergeTree has replicated_deduplication_window = 1000 by default).
-- The window also drops an insert WITHOUT a token whose rows equal one of the last N blocks, which
-- would break ingest --replace (it deletes a file's rows and inserts them again): dnsloss's own
-- writes turn deduplication off (the embedded engine's session default, see
-- chembed.NoDeduplication; chserver sends deduplicate_insert = 'disable' / insert_deduplicate = 0),
-- and `analyzer serve` turns it back on for a request that carries a token.
ALTER TABLE dns_messages MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE capture_stats MODIFY SETTING non_replicated_deduplication_window = 10000;
