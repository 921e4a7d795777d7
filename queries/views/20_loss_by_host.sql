-- loss_by_host: per capture host and DNS server, how many query attempts got an answer.
-- unanswered_ratio leaves out attempts whose outcome is unknown (capture ended too soon), and
-- attempts made while the capture itself was losing packets: an attempt whose query time falls in
-- a capture_stats interval of its host with kernel or tool drops is counted in capture_lossy and
-- left out of the ratio, so that capture loss is never reported as network loss.
CREATE OR REPLACE VIEW loss_by_host AS
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
ORDER BY host, server_ip;
