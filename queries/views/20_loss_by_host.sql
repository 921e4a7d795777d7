-- loss_by_host: per capture host and DNS server, how many query attempts got an answer, and what
-- that did to the stub-resolver lookups (dns_lookups) that began with a query to that server.
-- unanswered_ratio leaves out attempts whose outcome is unknown (capture ended too soon), and
-- attempts made while the capture itself was losing packets: an attempt whose query time falls in
-- a capture_stats interval of its host with kernel or tool drops is counted in capture_lossy and
-- left out of the ratio, so that capture loss is never reported as network loss.
-- lookups: lookups that began at this server; failed_lookups: those without a positive answer;
-- masked_timeouts: failed lookups where an NXDOMAIN/NODATA hid a timeout; retries: query
-- messages beyond the first per name and type; time_lost_ms: summed time the lookups waited on
-- attempts that got no answer.
CREATE OR REPLACE VIEW loss_by_host AS
SELECT
    a.host AS host,
    a.server_ip AS server_ip,
    a.attempts AS attempts,
    a.answered AS answered,
    a.late AS late,
    a.unanswered AS unanswered,
    a.unknown AS unknown,
    a.unanswered_ratio AS unanswered_ratio,
    a.rtt_p50_ms AS rtt_p50_ms,
    a.rtt_p95_ms AS rtt_p95_ms,
    a.rtt_p99_ms AS rtt_p99_ms,
    a.capture_lossy AS capture_lossy,
    l.lookups AS lookups,
    l.failed_lookups AS failed_lookups,
    l.masked_timeouts AS masked_timeouts,
    l.retries AS retries,
    l.time_lost_ms AS time_lost_ms
FROM
(
    SELECT
        host,
        replaceRegexpOne(toString(server_ip), '^::ffff:([0-9.]+)$', '\\1') AS server_ip,
        count() AS attempts,
        countIf(outcome = 'answered') AS answered,
        countIf(outcome = 'late') AS late,
        countIf(outcome = 'unanswered') AS unanswered,
        countIf(outcome = 'unknown') AS unknown,
        round(countIf(outcome = 'unanswered' AND NOT lossy) / nullIf(countIf(outcome != 'unknown' AND NOT lossy), 0), 4) AS unanswered_ratio,
        round(quantileExactIf(0.50)(rtt_ms, outcome = 'answered'), 3) AS rtt_p50_ms,
        round(quantileExactIf(0.95)(rtt_ms, outcome = 'answered'), 3) AS rtt_p95_ms,
        round(quantileExactIf(0.99)(rtt_ms, outcome = 'answered'), 3) AS rtt_p99_ms,
        countIf(lossy) AS capture_lossy
    FROM
    (
        SELECT t.host AS host, t.server_ip AS server_ip, t.outcome AS outcome, t.rtt_ms AS rtt_ms,
            c.end_ts > t.query_ts AS lossy
        FROM dns_transactions AS t
        ASOF LEFT JOIN
        (
            SELECT host, start_ts, end_ts FROM capture_stats WHERE kernel_drops + tool_drops > 0
        ) AS c ON t.host = c.host AND t.query_ts >= c.start_ts
    )
    GROUP BY host, server_ip
) AS a
LEFT JOIN
(
    SELECT host, servers[1] AS server_ip,
        count() AS lookups,
        countIf(outcome != 'answered') AS failed_lookups,
        sum(masked_timeout) AS masked_timeouts,
        sum(retries) AS retries,
        round(sum(time_lost_ms), 3) AS time_lost_ms
    FROM dns_lookups
    GROUP BY host, server_ip
) AS l
ON a.host = l.host AND a.server_ip = l.server_ip
ORDER BY host, server_ip;
