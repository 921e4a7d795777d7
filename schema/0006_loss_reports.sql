-- loss_reports: one row per scheduled report period and host, written by `analyzer report --every`
-- when it produces the report of a closed period: the host's summary line of that report, so that
-- history can be queried and periods compared with SQL. Counts follow loss_by_host; the lookup
-- columns are NULL where the store had no lookups layer. A period is recorded once: the scheduler
-- skips periods that already have rows, and ReplacingMergeTree folds any duplicate on merge.
CREATE TABLE IF NOT EXISTS loss_reports
(
    period_start           DateTime64(3, 'UTC')     COMMENT 'first instant of the period (inclusive)',
    period_end             DateTime64(3, 'UTC')     COMMENT 'end of the period (exclusive)',
    host                   LowCardinality(String)   COMMENT 'capture host',
    servers                Array(String)            COMMENT 'DNS servers the host queried in the period',
    attempts               UInt64                   COMMENT 'query attempts sent in the period',
    answered               UInt64,
    late                   UInt64,
    unanswered             UInt64,
    unknown                UInt64,
    capture_lossy          UInt64                   COMMENT 'attempts sent while the capture dropped packets (left out of the ratio)',
    unanswered_ratio       Nullable(Float64)        COMMENT 'unanswered / (attempts - unknown), capture_lossy attempts left out',
    est_packet_loss        Nullable(Float64)        COMMENT '1 - sqrt(1 - unanswered_ratio): per-packet loss if both ways lose alike',
    lookups                Nullable(UInt64),
    failed_lookups         Nullable(UInt64),
    masked_timeouts        Nullable(UInt64),
    retries                Nullable(UInt64),
    time_lost_ms           Nullable(Float64),
    rtt_p50_ms             Nullable(Float64),
    rtt_p95_ms             Nullable(Float64),
    rtt_p99_ms             Nullable(Float64),
    capture_drop_intervals UInt32                   COMMENT 'capture intervals with kernel or tool drops overlapping the period',
    worse                  UInt8                    COMMENT '1 when the host got worse than in the previous period',
    generated_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(generated_at)
PARTITION BY toYYYYMM(period_start)
ORDER BY (period_start, period_end, host);
