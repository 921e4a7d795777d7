-- loss_report_timeline: query attempts and unanswered attempts per host in buckets of {step_ms}
-- milliseconds (aligned to the Unix epoch), for the attempts sent in [{since}, {until}).
-- {tx} is view dns_transactions, or a table of its rows that the report linked once (queries.Link).
SELECT
    host,
    intDiv(toUnixTimestamp64Milli(query_ts), {step_ms:UInt64}) * {step_ms:UInt64} AS bucket_ms,
    count() AS attempts,
    countIf(outcome = 'unanswered') AS unanswered
FROM {tx:Identifier}
WHERE query_ts >= {since:DateTime64(9, 'UTC')} AND query_ts < {until:DateTime64(9, 'UTC')}
GROUP BY host, bucket_ms
ORDER BY host, bucket_ms
