-- loss_report_worst_lookups: the worst lookups started in [{since}, {until}) (needs the lookups
-- layer: {lookups} is view dns_lookups, or a table of its rows that the report linked once,
-- queries.Link): failed ones first, masked timeouts first among them, then by time lost.
SELECT
    host,
    client_ip,
    name,
    qtypes,
    toUnixTimestamp64Nano(start_ts) AS start_ns,
    duration_ms,
    attempts,
    retries,
    outcome,
    masked_timeout,
    time_lost_ms,
    names_tried,
    name_results,
    servers
FROM {lookups:Identifier}
WHERE (outcome != 'answered' OR time_lost_ms > 0)
    AND start_ts >= {since:DateTime64(9, 'UTC')} AND start_ts < {until:DateTime64(9, 'UTC')}
ORDER BY outcome != 'answered' DESC, masked_timeout DESC, time_lost_ms DESC, start_ts, host, client_ip, name
LIMIT {limit:UInt32}
