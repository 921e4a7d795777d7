-- loss_report_rtt: the distribution of round-trip times of the answered attempts sent in
-- [{since}, {until}): bucket i (1-based) counts rtt_ms <= edges[i] and > edges[i-1]; bucket
-- length(edges) + 1 counts the rest.
-- {tx} is view dns_transactions, or a table of its rows that the report linked once (queries.Link).
SELECT
    if(i = 0, length({edges:Array(Float64)}) + 1, i) AS bucket,
    count() AS answered
FROM
(
    SELECT arrayFirstIndex(e -> rtt_ms <= e, {edges:Array(Float64)}) AS i
    FROM {tx:Identifier}
    WHERE outcome = 'answered'
        AND query_ts >= {since:DateTime64(9, 'UTC')} AND query_ts < {until:DateTime64(9, 'UTC')}
)
GROUP BY bucket
ORDER BY bucket
