-- capture_stats: one row per capture source and interval (a whole file, or 10 s of live capture).
-- Packet counters say what the capture itself lost, so that capture loss is never read as network loss.
CREATE TABLE IF NOT EXISTS capture_stats
(
    host               LowCardinality(String),
    source             LowCardinality(String)  COMMENT 'capture file path or live interface',
    iface              LowCardinality(String),
    start_ts           DateTime64(9, 'UTC')    COMMENT 'interval start (first packet of a file)',
    end_ts             DateTime64(9, 'UTC')    COMMENT 'interval end (last packet of a file)',
    packets            UInt64                  COMMENT 'packets the collector received',
    kernel_drops       UInt64                  COMMENT 'packets the kernel dropped (ring full)',
    tool_drops         UInt64                  COMMENT 'packets or rows dropped by dnsloss (queue full, spool bound)',
    dns_messages       UInt64                  COMMENT 'DNS messages written as rows',
    non_dns            UInt64                  COMMENT 'packets that were not DNS on a configured port',
    malformed          UInt64                  COMMENT 'DNS messages decoded only in part (rows with a reason)',
    truncated          UInt64                  COMMENT 'packets cut short by the capture snaplen',
    decode_errors      UInt64                  COMMENT 'packets with a broken link/IP/transport header',
    reassembly_drops   UInt64                  COMMENT 'IP fragments or TCP bytes evicted by the reassembly caps',
    rows_dropped       UInt64                  COMMENT 'rows lost before reaching the store (spool bound)'
)
ENGINE = MergeTree
PARTITION BY toDate(start_ts)
ORDER BY (host, source, start_ts);
