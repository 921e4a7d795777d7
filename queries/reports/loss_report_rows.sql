-- loss_report_rows: the loss report's attempt counts for the query attempts sent in
-- [{since}, {until}), per host and DNS server (level 'server'), per host over all its servers
-- (level 'host', server_ip '') and over everything (level 'total', host ''). The definitions are
-- loss_by_host's: attempts sent while their host's capture was losing packets (capture_lossy) are
-- left out of the ratio, so that capture loss is never reported as network loss. est_packet_loss assumes that queries and responses are lost independently with
-- the same probability p, so that unanswered_ratio = 1 - (1 - p)^2.
-- {tx} is view dns_transactions, or a table of its rows that the report linked once (queries.Link).
SELECT
    multiIf(grouping(host) = 1, 'total', grouping(server_ip) = 1, 'host', 'server') AS level,
    host,
    server_ip,
    count() AS attempts,
    countIf(outcome = 'answered') AS answered,
    countIf(outcome = 'late') AS late,
    countIf(outcome = 'unanswered') AS unanswered,
    countIf(outcome = 'unknown') AS unknown,
    countIf(lossy) AS capture_lossy,
    countIf(outcome = 'unanswered' AND NOT lossy) / nullIf(countIf(outcome != 'unknown' AND NOT lossy), 0) AS ratio,
    round(ratio, 4) AS unanswered_ratio,
    round(1 - sqrt(1 - ratio), 4) AS est_packet_loss,
    if(answered = 0, NULL, round(quantileExactIf(0.50)(rtt_ms, outcome = 'answered'), 3)) AS rtt_p50_ms,
    if(answered = 0, NULL, round(quantileExactIf(0.95)(rtt_ms, outcome = 'answered'), 3)) AS rtt_p95_ms,
    if(answered = 0, NULL, round(quantileExactIf(0.99)(rtt_ms, outcome = 'answered'), 3)) AS rtt_p99_ms,
    toUnixTimestamp64Nano(min(query_ts)) AS first_ns,
    toUnixTimestamp64Nano(max(query_ts)) AS last_ns
FROM
(
    SELECT t.host AS host, replaceRegexpOne(toString(t.server_ip), '^::ffff:([0-9.]+)$', '\\1') AS server_ip,
        t.outcome AS outcome, t.rtt_ms AS rtt_ms, t.query_ts AS query_ts, c.end_ts > t.query_ts AS lossy
    FROM {tx:Identifier} AS t
    ASOF LEFT JOIN
    (
        SELECT host, start_ts, end_ts FROM capture_stats WHERE kernel_drops + tool_drops > 0
    ) AS c ON t.host = c.host AND t.query_ts >= c.start_ts
    WHERE t.query_ts >= {since:DateTime64(9, 'UTC')} AND t.query_ts < {until:DateTime64(9, 'UTC')}
)
GROUP BY GROUPING SETS ((host, server_ip), (host), ())
ORDER BY grouping(host) DESC, host, grouping(server_ip) DESC, server_ip
