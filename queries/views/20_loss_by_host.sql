-- loss_by_host: per capture host and DNS server, how many query attempts got an answer.
-- unanswered_ratio leaves out attempts whose outcome is unknown (capture ended too soon).
CREATE OR REPLACE VIEW loss_by_host AS
SELECT
    host,
    replaceRegexpOne(toString(server_ip), '^::ffff:([0-9.]+)$', '\\1') AS server_ip,
    count() AS attempts,
    countIf(outcome = 'answered') AS answered,
    countIf(outcome = 'late') AS late,
    countIf(outcome = 'unanswered') AS unanswered,
    countIf(outcome = 'unknown') AS unknown,
    round(unanswered / nullIf(attempts - unknown, 0), 4) AS unanswered_ratio,
    round(quantileExactIf(0.50)(rtt_ms, outcome = 'answered'), 3) AS rtt_p50_ms,
    round(quantileExactIf(0.95)(rtt_ms, outcome = 'answered'), 3) AS rtt_p95_ms,
    round(quantileExactIf(0.99)(rtt_ms, outcome = 'answered'), 3) AS rtt_p99_ms
FROM dns_transactions
GROUP BY host, server_ip
ORDER BY host, server_ip;
