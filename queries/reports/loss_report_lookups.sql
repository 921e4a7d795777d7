-- loss_report_lookups: lookup counts of the report (needs the lookups layer: {lookups} is view
-- dns_lookups, or a table of its rows that the report linked once, queries.Link) for
-- the lookups started in [{since}, {until}), at the levels of loss_report_rows: per host and the
-- DNS server the lookup went to first, per host (server_ip '') and in total (host '').
SELECT
    multiIf(grouping(host) = 1, 'total', grouping(server_ip) = 1, 'host', 'server') AS level,
    host,
    server_ip,
    count() AS lookups,
    countIf(outcome != 'answered') AS failed_lookups,
    toUInt64(sum(masked_timeout)) AS masked_timeouts,
    toUInt64(sum(retries)) AS retries,
    round(sum(time_lost_ms), 3) AS time_lost_ms
FROM
(
    SELECT host, if(empty(servers), '', servers[1]) AS server_ip, outcome, masked_timeout, retries, time_lost_ms
    FROM {lookups:Identifier}
    WHERE start_ts >= {since:DateTime64(9, 'UTC')} AND start_ts < {until:DateTime64(9, 'UTC')}
)
GROUP BY GROUPING SETS ((host, server_ip), (host), ())
ORDER BY grouping(host) DESC, host, grouping(server_ip) DESC, server_ip
