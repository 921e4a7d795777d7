-- loss_report_capture_drops: capture intervals that overlap [{since}, {until}) in which the
-- capture itself lost packets (kernel ring full, or dnsloss's own queue or spool bound): loss
-- counted in them may be capture loss, not network loss.
SELECT
    host,
    source,
    toUnixTimestamp64Nano(start_ts) AS start_ns,
    toUnixTimestamp64Nano(end_ts) AS end_ns,
    packets,
    kernel_drops,
    tool_drops
FROM capture_stats
WHERE (kernel_drops > 0 OR tool_drops > 0)
    AND start_ts < {until:DateTime64(9, 'UTC')} AND end_ts >= {since:DateTime64(9, 'UTC')}
ORDER BY host, start_ts, source
