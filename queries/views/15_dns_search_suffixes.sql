-- dns_search_suffixes: the search suffixes of each capture host, one row per (host, suffix).
--
-- Where the user gave the host's search list (table search_domains, `--search-domains`), that list
-- is used and nothing is inferred; a row for host '' gives the list of every host without its own.
-- Otherwise suffixes are inferred from the traffic: a query from a client that comes right after
-- the client's previous query went unanswered (a whole multiple of retry_grid_ms later, give or
-- take retry_jitter_ms) or got a negative answer (within lookup_next_name_ms), and whose name is
-- that query's name plus a suffix (`name` -> `name.suffix`), or the reverse (`name.suffix` ->
-- `name`), shows a search expansion. Two suffixed names of one stem (`name.s1` -> `name.s2`) count
-- only for a stem that was also seen bare in such a step. A suffix needs suffix_min_support such
-- steps (default 2): a single pair of unrelated names never makes one; and when all its steps
-- are of one stem, that many of one kind (bare or both): two lookups that happen to follow
-- each other, `git6` -> `git6.example.com` and `git6.in.corp.example` -> `git6.example.com`,
-- do not make example.com a suffix. Nor does `x.s` when s is a suffix with ten times its
-- support: `auth2.s` -> `auth2.example.org.s` is two lookups side by side with suffix s.
-- ndots is the configured one, or for inferred lists one more than the most dots of names that
-- were tried bare right after a negative answer for a suffixed form, in at least
-- suffix_min_support such steps and in more of them than the other way round (suffixed right
-- after a negative answer for the bare name): glibc tries a name as-is last when it has fewer
-- dots than ndots, and a client with lookups of one name running side by side can show a few
-- steps the wrong way by chance; at least 1.
CREATE OR REPLACE VIEW dns_search_suffixes AS
WITH
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'lookup_next_name_ms'), 2) AS next_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'retry_grid_ms'), 1000) AS grid_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'retry_jitter_ms'), 10) AS jitter_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'retry_max_ms'), 31000) AS max_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'suffix_min_support'), 2) AS min_support,
    (SELECT count() FROM search_domains WHERE host = '') > 0 AS has_default,
    toInt64(next_ms * 1e6) AS next_ns,
    toInt64(grid_ms * 1e6) AS grid_ns,
    toInt64(jitter_ms * 1e6) AS jitter_ns,
    toInt64(max_ms * 1e6) AS max_ns
SELECT host, suffix, 'configured' AS source, toUInt64(0) AS support, ndots
FROM
(
    SELECT host, argMax(domains, updated_at) AS domains, ifNull(argMax(ndots, updated_at), 1) AS ndots
    FROM search_domains WHERE host != '' GROUP BY host
)
ARRAY JOIN domains AS suffix
UNION ALL
SELECT m.host AS host, suffix, 'configured' AS source, toUInt64(0) AS support, d.ndots AS ndots
FROM
(
    SELECT DISTINCT host FROM dns_messages
    WHERE host NOT IN (SELECT host FROM search_domains WHERE host != '')
) AS m
CROSS JOIN
(
    SELECT arrayJoin(argMax(domains, updated_at)) AS suffix, ifNull(argMax(ndots, updated_at), 1) AS ndots
    FROM search_domains WHERE host = ''
) AS d
UNION ALL
SELECT host, suffix, 'inferred' AS source, support, ndots
FROM
(
-- the host's steps counted by the dots of their bare name, as (dots, steps) maps: a handful
-- of keys, however many steps
SELECT host, suffix, support,
    groupArray((suffix, support)) OVER (PARTITION BY host) AS host_suffixes,
    sumMap(last_map.1, last_map.2) OVER (PARTITION BY host) AS host_last,
    sumMap(first_map.1, first_map.2) OVER (PARTITION BY host) AS host_first,
    toUInt8(greatest(1, arrayMax(arrayPushBack(arrayFilter((d, n) -> n >= min_support
        AND n > host_first.2[indexOf(host_first.1, d)], host_last.1, host_last.2), -1)) + 1)) AS ndots
FROM
(
SELECT host, suffix, count() AS support,
    sumMapIf([step.3], [toUInt64(1)], step.3 >= 0) AS last_map,
    sumMapIf([step.4], [toUInt64(1)], step.4 >= 0) AS first_map
FROM
(
    SELECT host, stem, step, step.2 AS suffix
    FROM
    (
        SELECT host, stem, groupArray((kind, suffix, if(later_bare, toInt64(length(splitByChar('.', stem)) - 1), -1),
            if(earlier_bare, toInt64(length(splitByChar('.', stem)) - 1), -1))) AS steps
        FROM
        (
            SELECT host, stem, kind, suffix, later_bare, earlier_bare
            FROM
            (
                SELECT host, pqr, splitByChar('.', pq) AS a, splitByChar('.', q) AS b,
                    least(length(a), length(b)) AS shorter,
                    arrayFirstIndex(k -> a[k] != b[k], range(1, shorter + 1)) AS differ,
                    if(differ = 0, toUInt64(shorter), toUInt64(differ - 1)) AS common,
                    arrayStringConcat(arraySlice(a, 1, common), '.') AS stem,
                    arrayStringConcat(arraySlice(a, common + 1), '.') AS rest_a,
                    arrayStringConcat(arraySlice(b, common + 1), '.') AS rest_b,
                    if(rest_a = '' OR rest_b = '', 'bare', 'both') AS kind,
                    rest_b = '' AND pqr = 1 AS later_bare,
                    rest_a = '' AND pqr = 1 AS earlier_bare
                FROM
                (
                    SELECT host, qr, qname_key AS q, ts,
                        lagInFrame(qname_key) OVER w AS pq,
                        lagInFrame(qr) OVER w AS pqr,
                        lagInFrame(ts, 1, toDateTime64(0, 9, 'UTC')) OVER w AS pts,
                        lagInFrame(rcode) OVER w AS prcode,
                        lagInFrame(ancount) OVER w AS pancount,
                        toUnixTimestamp64Nano(ts) - toUnixTimestamp64Nano(pts) AS gap
                    FROM dns_messages
                    WHERE NOT has_default AND host NOT IN (SELECT host FROM search_domains WHERE host != '')
                    WINDOW w AS (PARTITION BY host, if(qr = 0, src_ip, dst_ip) ORDER BY ts
                        ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
                )
                WHERE qr = 0 AND pq != '' AND pq != q
                    AND ((pqr = 1 AND NOT (prcode = 0 AND pancount > 0) AND gap <= next_ns)
                      OR (pqr = 0 AND gap >= 900000000 AND gap <= max_ns
                          AND abs(gap - round(gap / grid_ns) * grid_ns) <= jitter_ns))
            )
            ARRAY JOIN arrayFilter(x -> x != '', [rest_a, rest_b]) AS suffix
            WHERE common >= 1
        )
        GROUP BY host, stem
        HAVING has(steps.1, 'bare')
    )
    ARRAY JOIN steps AS step
)
GROUP BY host, suffix
HAVING support >= min_support
    AND (uniqExact(stem) >= 2 OR countIf(step.1 = 'bare') >= min_support OR countIf(step.1 = 'both') >= min_support)
)
)
-- `x.s` where s is a suffix with ten times the support is lookups of names `a` and `a.x` side
-- by side, both with suffix s, not a suffix of its own
WHERE NOT arrayExists(o -> endsWith(suffix, concat('.', o.1)) AND support * 10 < o.2, host_suffixes);
