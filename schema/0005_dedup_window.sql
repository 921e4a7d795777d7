-- Deduplication of retried inserts: a collector sends each batch with an
-- insert_deduplication_token, so that a batch retried after a timeout or a restart (its spool)
-- is stored once. A plain MergeTree only remembers the last N inserted blocks when this window
-- is set (ReplicatedMergeTree has replicated_deduplication_window = 1000 by default).
-- The same window deduplicates an insert WITHOUT a token whose data is identical to one of the
-- last N blocks: writers that insert the same rows again on purpose (ingest --replace after a
-- DELETE) must send insert_deduplicate = 0 or a token of their own.
ALTER TABLE dns_messages MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE capture_stats MODIFY SETTING non_replicated_deduplication_window = 10000;
