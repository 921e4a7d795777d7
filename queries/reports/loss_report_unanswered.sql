-- loss_report_unanswered: the names whose queries went unanswered most often in [{since}, {until}),
-- per host, client, server, name and type: the report's worst lookups until the lookups layer
-- links attempts into lookups.
-- {tx} is view dns_transactions, or a table of its rows that the report linked once (queries.Link).
SELECT
    host,
    replaceRegexpOne(toString(client_ip), '^::ffff:([0-9.]+)$', '\\1') AS client,
    replaceRegexpOne(toString(server_ip), '^::ffff:([0-9.]+)$', '\\1') AS server,
    any(qname) AS name,
    qtype,
    toUnixTimestamp64Nano(min(query_ts)) AS first_ns,
    toUnixTimestamp64Nano(max(query_ts)) AS last_ns,
    count() AS attempts,
    countIf(outcome = 'unanswered') AS unanswered,
    countIf(outcome = 'answered') AS answered
FROM {tx:Identifier}
WHERE query_ts >= {since:DateTime64(9, 'UTC')} AND query_ts < {until:DateTime64(9, 'UTC')}
GROUP BY host, client_ip, server_ip, lower(qname), qtype
HAVING unanswered > 0
ORDER BY unanswered DESC, first_ns, host, client, name, qtype
LIMIT {limit:UInt32}
