-- dns_lookup_attempts: every query attempt (one row per query message, from dns_transactions) with
-- the stub-resolver lookup it belongs to, named by (host, client_ip, lib, base, lookup_ts).
--
-- Attempts are grouped by capture host, client address, "lib" (the query's EDNS and header flags,
-- which differ between resolver libraries but never within one lookup) and base: the query name
-- with a search suffix of the host (dns_search_suffixes, longest first) taken off. Within a group,
-- in time order, each attempt looks back (at most 32 attempts, retry_max_ms) for the attempt it
-- follows, by the first rule that holds, preferring the latest:
--   retry      the same name, type and DNS id (glibc resends the identical packet; failover to
--              another nameserver and dig's retry from a new port keep the id)
--   pair       the same name, other type, from the same port within a second (A and AAAA on one
--              socket, also glibc's single-request mode) or, in groups that never resend an
--              identical packet (Go), from another port within pair_window_ms (default 10)
--   new-id     the same name and type, a new id (Go's resolver), after an attempt that got no
--              answer, the group's retry spacing later: the commonest gap, in whole
--              retry_grid_ms (give or take retry_jitter_ms), from an unanswered attempt to the
--              next of the same name and type;
--              only for groups that never resend an identical packet (Go; glibc always does)
--   next-name  another name of the search list, right after this one got a negative answer
--              (within lookup_next_name_ms, with no third name sent in between) or one wait
--              after an attempt of it was sent (the group's retry spacing T, or glibc's 2T/3
--              and 4T/3 when the group uses three nameservers), in the order the host's ndots
--              gives: `name` -> `name.suffix` when the
--              name is tried as-is first, `name.suffix` -> `name` when it is tried last
-- To keep the arrays short, a group is cut into time buckets of lookup_bucket_ms (default 120 s),
-- each linked with the bucket before it as context; a lookup longer than a bucket is cut.
-- An attempt that follows none starts a lookup. Whether the base is tried as-is first is read
-- from the group's own steps right after a negative answer (when one way wins by two or more) (bare -> suffixed versus suffixed ->
-- bare), and when they do not tell, from the dots in the base against the host's ndots
-- (dns_search_suffixes).
-- result is the attempt's own: answer (a positive answer), nxdomain, nodata, servfail, refused,
-- error (another rcode), or '' when no response came within the match window.
CREATE OR REPLACE VIEW dns_lookup_attempts AS
WITH
    ifNull((SELECT argMaxOrNull(value, updated_at) FROM dnsloss_settings WHERE name = 'lookup_next_name_ms'), 2) AS next_ms,
    ifNull((SELECT argMaxOrNull(value, updated_at) FROM dnsloss_settings WHERE name = 'retry_grid_ms'), 1000) AS grid_ms,
    ifNull((SELECT argMaxOrNull(value, updated_at) FROM dnsloss_settings WHERE name = 'retry_jitter_ms'), 10) AS jitter_ms,
    ifNull((SELECT argMaxOrNull(value, updated_at) FROM dnsloss_settings WHERE name = 'retry_max_ms'), 31000) AS max_ms,
    ifNull((SELECT argMaxOrNull(value, updated_at) FROM dnsloss_settings WHERE name = 'pair_window_ms'), 10) AS pair_ms,
    toInt64(next_ms * 1e6) AS next_ns,
    toInt64(grid_ms * 1e6) AS grid_ns,
    toInt64(jitter_ms * 1e6) AS jitter_ns,
    toInt64(max_ms * 1e6) AS max_ns,
    toInt64(pair_ms * 1e6) AS pair_ns,
    toInt64(ifNull((SELECT argMaxOrNull(value, updated_at) FROM dnsloss_settings WHERE name = 'lookup_bucket_ms'), 120000) * 1e6) AS bucket_ns,
    900000000 AS min_ns,
    4294967296 AS shift
SELECT
    host, client_ip, lib, base,
    fromUnixTimestamp64Nano(lookup_ns, 'UTC') AS lookup_ts,
    fromUnixTimestamp64Nano(ts_ns, 'UTC') AS ts,
    qname_key, qname, qtype, id, client_port, server_ip, result,
    if(rts_ns = 0, NULL, fromUnixTimestamp64Nano(rts_ns, 'UTC')) AS response_ts,
    link, as_is_first
FROM
(
    -- roots by pointer jumping: after 7 rounds every attempt points at the first of its lookup
    -- (lookups of up to 128 linked attempts)
    SELECT *, arrayMap(i -> r6[r6[i]], idx) AS r7, arrayMap(i -> tt[r7[i]], idx) AS lookup,
        arrayMap(i -> ['first', 'next-name', 'next-name', 'new-id', 'pair', 'retry'][intDiv(best[i], shift) + 1], idx) AS links
    FROM (SELECT *, arrayMap(i -> r5[r5[i]], idx) AS r6 FROM (SELECT *, arrayMap(i -> r4[r4[i]], idx) AS r5
    FROM (SELECT *, arrayMap(i -> r3[r3[i]], idx) AS r4 FROM (SELECT *, arrayMap(i -> r2[r2[i]], idx) AS r3
    FROM (SELECT *, arrayMap(i -> r1[r1[i]], idx) AS r2 FROM (SELECT *, arrayMap(i -> r0[r0[i]], idx) AS r1
    FROM
    (
        SELECT *,
            arrayMap(i -> if(newid[i] = 0 OR main[i] >= 5 * shift
                    OR (intDiv(main[i], shift) = 4 AND (port[main[i] % shift] = port[i]
                        OR tt[i] - tt[main[i] % shift] <= abs((tt[i] - tt[newid[i] % shift])
                            - round((tt[i] - tt[newid[i] % shift]) / grid_ns) * grid_ns))),
                main[i], newid[i]), idx) AS best,
            arrayMap(i -> toUInt32(if(best[i] = 0, i, best[i] % shift)), idx) AS r0
        FROM
        (
            -- a new id (or a pair from another socket) only in groups that never resend a packet
            SELECT *,
                if(arrayExists(i -> intDiv(main[i], shift) = 5 AND port[main[i] % shift] = port[i]
                        AND tt[i] - tt[main[i] % shift] >= min_ns, idx),
                    arrayMap(i -> toUInt64(0), idx),
                    arrayMap(i -> arrayMax(arrayMap(j -> multiIf(
                        qn[j] = qn[i] AND qt[j] != qt[i] AND port[j] != port[i] AND tt[i] - tt[j] <= pair_ns, 4 * shift + j,
                        qn[j] = qn[i] AND qt[j] = qt[i] AND id[j] != id[i] AND res[j] = 0
                            AND tt[i] - tt[j] BETWEEN min_ns AND max_ns
                            AND abs((tt[i] - tt[j]) - round((tt[i] - tt[j]) / grid_ns) * grid_ns) <= jitter_ns
                            AND (spacing = 0 OR round((tt[i] - tt[j]) / grid_ns) = spacing),
                        3 * shift + j, 0), range(toUInt32(greatest(1, toInt64(i) - 32)), i))), idx)) AS newid
            FROM
            (
                -- the best earlier attempt to follow, as score * 2^32 + index (0: none)
                SELECT *,
                    arrayMap(i -> arrayMax(arrayMap(j -> multiIf(
                        tt[i] - tt[j] > max_ns, 0,
                        qn[j] = qn[i] AND qt[j] = qt[i] AND id[j] = id[i], 5 * shift + j,
                        qn[j] = qn[i] AND qt[j] != qt[i] AND port[j] = port[i] AND tt[i] - tt[j] <= 1000000000, 4 * shift + j,
                        qn[j] != qn[i] AND (qn[j] = qn[other[i]] OR tt[other[i]] < rts[j]) AND res[j] > 1 AND tt[i] >= rts[j] AND tt[i] - rts[j] <= next_ns
                            AND (NOT bare[j] OR as_is_first) AND (NOT bare[i] OR NOT as_is_first), 2 * shift + j,
                        qn[j] != qn[i] AND res[j] != 1 AND tt[i] - tt[j] >= min_ns
                            AND abs((tt[i] - tt[j]) - round((tt[i] - tt[j]) / grid_ns) * grid_ns) <= jitter_ns
                            AND (spacing = 0 OR toUInt64(round((tt[i] - tt[j]) / grid_ns))
                                IN (spacing, if(nameservers >= 3, intDiv(2 * spacing, 3), spacing),
                                    if(nameservers >= 3, intDiv(4 * spacing, 3), spacing)))
                            AND (NOT bare[j] OR as_is_first) AND (NOT bare[i] OR NOT as_is_first), 1 * shift + j,
                        0), range(toUInt32(greatest(1, toInt64(i) - 32)), i))), idx) AS main
                FROM
                (
                    SELECT *,
                        if(abs(toInt64(first_votes) - toInt64(last_votes)) >= 2, first_votes > last_votes,
                            length(splitByChar('.', base)) - 1 >= ndots) AS as_is_first
                    FROM
                    (
                        SELECT *,
                            arraySum(arrayMap((i, s) -> s AND bare[i - 1], idx, steps)) AS first_votes,
                            arraySum(arrayMap((i, s) -> s AND bare[i], idx, steps)) AS last_votes
                        FROM
                        (
                            -- steps between neighbours from bare to suffixed and back, right after a negative answer
                            SELECT *,
                                -- the group's retry spacing, in grid units: the commonest gap from an
                                -- unanswered attempt to the next of the same name and type, from resends of
                                -- the same id where there are any (glibc), else from all (Go)
                                arrayMap(i -> arrayFirst(x -> x > 0, arrayMap(j ->
                                    if(qn[j] = qn[i] AND qt[j] = qt[i] AND res[j] = 0 AND tt[i] - tt[j] BETWEEN min_ns AND max_ns
                                        AND abs((tt[i] - tt[j]) - round((tt[i] - tt[j]) / grid_ns) * grid_ns) <= jitter_ns,
                                        toUInt64(round((tt[i] - tt[j]) / grid_ns)) * 2 + (id[j] != id[i]), toUInt64(0)),
                                    arrayReverse(range(toUInt32(greatest(1, toInt64(i) - 8)), i)))), idx) AS gaps,
                                intDiv(if(arrayExists(x -> x > 0 AND x % 2 = 0, gaps),
                                    arrayReduce('topK(1)', arrayFilter(x -> x > 0 AND x % 2 = 0, gaps))[1],
                                    arrayReduce('topK(1)', arrayFilter(x -> x > 0, gaps))[1]), 2) AS spacing,
                                -- the latest earlier attempt of another name
                                arrayMap(i -> arrayFirst(k -> qn[k] != qn[i],
                                    arrayReverse(range(toUInt32(greatest(1, toInt64(i) - 32)), i))), idx) AS other,
                                arrayMap(i -> i > 1 AND bare[i - 1] != bare[i] AND qn[i - 1] != qn[i]
                                    AND res[i - 1] > 1 AND tt[i] >= rts[i - 1] AND tt[i] - rts[i - 1] <= next_ns,
                                    idx) AS steps
                            FROM
                            (
                                SELECT host, client_ip, lib, base, ndots, g.10 AS prim,
                                    g.1 AS tt, g.2 AS qt, g.3 AS id, g.4 AS qn, g.5 AS port, g.6 AS res, g.7 AS rts,
                                    g.8 AS qnames, g.9 AS servers, length(arrayDistinct(servers)) AS nameservers,
                                    arrayEnumerate(g) AS idx,
                                    arrayMap(x -> x = base, qn) AS bare
                                FROM
                                (
        SELECT host, client_ip, lib, base, any(ndots) AS ndots,
            arraySort(groupArray((ts_ns, qtype, id, qname_key, client_port, res, rts_ns, qname, server_ip, bucket = own_bucket))) AS g
        FROM
        (
            SELECT t.host AS host, t.client_ip AS client_ip, t.client_port AS client_port, t.server_ip AS server_ip,
                t.id AS id, t.qname AS qname, t.qname_key AS qname_key, t.qtype AS qtype,
                toUnixTimestamp64Nano(t.query_ts) AS ts_ns,
                if(t.outcome = 'answered', toUnixTimestamp64Nano(assumeNotNull(t.response_ts)), 0) AS rts_ns,
                assumeNotNull(t.rcode) AS rc,
                toUInt8(multiIf(t.outcome != 'answered', 0,
                    rc = 0 AND assumeNotNull(t.ancount) > 0, 1,
                    rc = 3, 2,
                    rc = 0, 3,
                    rc = 2, 4,
                    rc = 5, 5,
                    6)) AS res,
                bitOr(bitShiftLeft(toUInt32(t.edns_udp_size), 8),
                    t.edns * 8 + t.rd * 4 + t.ad * 2 + t.cd) AS lib,
                arrayFirst(x -> endsWith(t.qname_key, concat('.', x)), s.suffixes) AS suffix,
                if(suffix = '', t.qname_key, substring(t.qname_key, 1, length(t.qname_key) - length(suffix) - 1)) AS base,
                if(s.ndots = 0, 1, s.ndots) AS ndots,
                intDiv(ts_ns, bucket_ns) AS own_bucket
            FROM dns_transactions AS t
            LEFT JOIN
            (
                SELECT host, arraySort(x -> -length(x), groupArray(suffix)) AS suffixes, max(ndots) AS ndots
                FROM dns_search_suffixes GROUP BY host
            ) AS s ON t.host = s.host
        )
        ARRAY JOIN [own_bucket, own_bucket + 1] AS bucket
        GROUP BY host, client_ip, lib, base, bucket
                                )
                            )
                        )
                    )
                )
            )
        )
    )))))))
)
ARRAY JOIN
    tt AS ts_ns, lookup AS lookup_ns, qnames AS qname, qn AS qname_key, qt AS qtype, id, port AS client_port,
    servers AS server_ip, rts AS rts_ns, links AS link,
    arrayMap(r -> ['', 'answer', 'nxdomain', 'nodata', 'servfail', 'refused', 'error'][r + 1], res) AS result,
    prim AS primary
WHERE primary;
