-- dns_lookup_attempts: every query attempt (one row per query message, from dns_transactions) with
-- the stub-resolver lookup it belongs to, named by (host, client_ip, lib, base, lookup_ts).
--
-- Attempts are grouped by capture host, client address, "lib" (the query's EDNS and header flags,
-- which differ between resolver libraries but never within one lookup) and base: the query name
-- with a search suffix of the host (dns_search_suffixes, longest first) taken off. Within a group,
-- in time order, each attempt looks back (at most 96 attempts, retry_max_ms) for the attempt it
-- follows, by the first rule that holds, preferring the latest:
--   retry      the same name, type and DNS id (glibc resends the identical packet; failover to
--              another nameserver and dig's retry from a new port keep the id); in groups that
--              never resend an identical packet, from another port only a whole number of
--              retry_grid_ms later (else two random ids collided)
--   pair       the same name, other type, from the same port within a second (A and AAAA on one
--              socket, also glibc's single-request mode) or, in groups that never resend an
--              identical packet (Go), from another port within pair_window_ms (default 10): the
--              nearest earlier such query, unless it is in a pair already (lookups of one name
--              side by side) or either port asks the name more than once (glibc's A and AAAA
--              share a socket: two glibc lookups of one name 9 ms apart are two lookups); or,
--              in groups that resend a lost query with its id (glibc), an AAAA from another port
--              within reopen_window_ms (default 50) after the response to an A whose port asked
--              the name only as A: glibc's single-request-reopen, set in resolv.conf or
--              switched on by glibc itself after a pair timed out with one answer
--   new-id     the same name and type, a new id (Go's resolver), after an attempt that got no
--              answer, the group's retry spacing later: the commonest gap, in whole
--              retry_grid_ms (give or take retry_jitter_ms), from an unanswered attempt to the
--              next of the same name and type; or right after (within lookup_next_name_ms) an
--              attempt that got SERVFAIL, REFUSED or another error rcode (Go asks the next
--              server at once); only for groups that never resend an identical packet (Go;
--              glibc always does), and an attempt is retried this way once (a second
--              candidate is another lookup of the same name begun at that moment)
--   next-name  another name of the search list, right after this one got a negative answer
--              (within lookup_next_name_ms, with no third name sent in between; of several
--              such, the one answered last: two lookups of one name side by side) or one wait
--              after an attempt of it was sent (the group's retry spacing T, or glibc's 2T/3
--              and 4T/3 when the group uses three nameservers), in the order the host's ndots
--              gives: `name` -> `name.suffix` when the name is tried as-is first,
--              `name.suffix` -> `name` when it is tried last
-- Of several candidates of one rule, the latest wins, except that next-name (and new-id) take
-- the answer that came last before the attempt, or the wait that fits the retry grid best: a
-- client with a dozen lookups of one name side by side (Kubernetes pods at heavy loss) has many
-- candidates within the tolerances, and the closest is the one its stub was waiting on.
-- To keep the arrays short, a group is cut into time buckets of lookup_bucket_ms (default 120
-- s) and each bucket into chunks of 256 attempts; each attempt's link is chosen in its own
-- chunk, which sees the 256 attempts before it as context. The lookups are then traced per
-- bucket, with the whole bucket before it: a lookup is cut only where it reaches back further
-- than that (a lookup longer than a bucket).
-- An attempt that follows none starts a lookup. Whether the base is tried as-is first is read,
-- in groups that resend a lost query with its id (glibc), from how often each form is asked in
-- the whole capture: every lookup asks its first name and a later one only when the names before
-- it failed, so a form asked at least 1.25 times (and 4 queries) more than every other is the
-- first. Else from the group's own steps right after a negative answer (bare -> suffixed versus
-- suffixed -> bare, when one way wins by two or more; lookups of one name back to back, each
-- failing with NXDOMAIN for its last name, step the wrong way), and when they do not tell, from
-- the dots in the base against the host's ndots (dns_search_suffixes).
-- result is the attempt's own: answer (a positive answer), nxdomain, nodata, servfail, refused,
-- error (another rcode), or '' when no response came within the match window.
CREATE OR REPLACE VIEW dns_lookup_attempts AS
WITH
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'lookup_next_name_ms'), 2) AS next_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'retry_grid_ms'), 1000) AS grid_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'retry_jitter_ms'), 10) AS jitter_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'retry_late_ms'), 40) AS late_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'retry_max_ms'), 31000) AS max_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'pair_window_ms'), 10) AS pair_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'reopen_window_ms'), 50) AS reopen_ms,
    toInt64(next_ms * 1e6) AS next_ns,
    toInt64(grid_ms * 1e6) AS grid_ns,
    toInt64(jitter_ms * 1e6) AS jitter_ns,
    -- timers fire late, never early: a retry may be as late after the grid as the group's
    -- resends of an identical A were (plus jitter), up to retry_late_ms
    toInt64(greatest(jitter_ms, late_ms) * 1e6) AS late_ns,
    toInt64(max_ms * 1e6) AS max_ns,
    toInt64(pair_ms * 1e6) AS pair_ns,
    toInt64(reopen_ms * 1e6) AS reopen_ns,
    toInt64(ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'lookup_bucket_ms'), 120000) * 1e6) AS bucket_ns,
    256 AS chunk_rows,
    900000000 AS min_ns,
    4294967296 AS shift,
    -- an attempt's index in its group array (at most two chunks) is below slot; the next-name
    -- and new-id rules keep how close the answer or the retry grid was, as 4194303 (2^32 / slot
    -- - 1) less the microseconds off, in the bits above it, so that the closest scores highest
    toUInt64(1024) AS slot,
    toUInt64(16777216) AS key_rn
SELECT
    host, client_ip, lib, base,
    fromUnixTimestamp64Nano(lookup_ns, 'UTC') AS lookup_ts,
    fromUnixTimestamp64Nano(ts_ns, 'UTC') AS ts,
    qname_key, qname, qtype, id, client_port, server_ip,
    ['', 'answer', 'nxdomain', 'nodata', 'servfail', 'refused', 'error'][res + 1] AS result,
    if(rts_ns = 0, NULL, fromUnixTimestamp64Nano(rts_ns, 'UTC')) AS response_ts,
    link, as_is_first
FROM
(
    -- The lookups: every attempt's link was chosen once, in its own chunk (below); here each time
    -- bucket of a group is read with the whole bucket before it, and every attempt's lookup is the
    -- first attempt of its chain, in one pass (an attempt follows an earlier one, whose lookup is
    -- known when it is reached). A chain that reaches back further than the bucket before is cut.
    SELECT *, arrayMap(r -> b_tt[r], roots) AS lookup
    FROM
    (
        SELECT *, arrayFold((acc, i, p) -> arrayPushBack(acc, if(p = 0 OR p >= i, i, acc[p])),
            arrayEnumerate(b), pidx, emptyArrayUInt32()) AS roots
        FROM
        (
            SELECT *, b.3 AS b_tt,
                -- the parent's place: the bucket before is complete, rows 1..m; this bucket follows it
                arrayMap(k -> toUInt32(multiIf(k = 0, 0, intDiv(k, key_rn) + 1 = pass_bucket, k % key_rn,
                    intDiv(k, key_rn) = pass_bucket, m + k % key_rn, 0)), b.2) AS pidx
            FROM
            (
                SELECT host, client_ip, lib, base, pass_bucket,
                    arraySort(groupArray((key, parent_key, ts_ns, own, qname, qname_key, qtype, id, client_port,
                        server_ip, res, rts_ns, link, as_is_first))) AS b,
                    toUInt32(countIf(own = 0)) AS m
                FROM
                (
                    -- Each level below computes what the level above reads: an alias whose
                    -- expression holds a lambda is evaluated again wherever it is named in the same
                    -- SELECT.
                    SELECT host, client_ip, lib, base, ts_ns, qname, qname_key, qtype, id, client_port, server_ip, res,
                        rts_ns, link, as_is_first, bucket, bucket * key_rn + rn + 1 AS key, parent_key
                    FROM
                    (
                        SELECT *,
                            arrayMap(b -> ['first', 'next-name', 'next-name', 'new-id', 'pair', 'retry'][intDiv(b, shift) + 1], best) AS links,
                            -- the attempt this one follows, as bucket * key_rn + row in the bucket + 1 (0: none)
                            arrayMap(b -> if(b = 0, toUInt64(0), bkt[b % slot] * key_rn + rnk[b % slot] + 1), best) AS parents
                        FROM
                        (
        SELECT *,
            -- a new id (or a pair from another socket) only in groups that never resend a packet;
            -- there, the same id from another port off the retry grid is two random ids that
            -- happen to be equal (Go picks a new one for every query), not dig's retry
            arrayMap(i -> if(NOT resends AND intDiv(main[i], shift) = 5 AND port[main[i] % slot] != port[i]
                    AND NOT (((tt[i] - tt[main[i] % slot]) - round((tt[i] - tt[main[i] % slot]) / grid_ns) * grid_ns) BETWEEN -jitter_ns AND glate),
                nid[i],
                if(resends OR nid[i] = 0 OR main[i] >= 5 * shift
                    OR (intDiv(main[i], shift) = 4 AND (port[main[i] % slot] = port[i]
                        OR tt[i] - tt[main[i] % slot] <= abs((tt[i] - tt[nid[i] % slot])
                            - round((tt[i] - tt[nid[i] % slot]) / grid_ns) * grid_ns))),
                main[i], nid[i])), idx) AS best
        FROM
        (
        -- a new-id retry follows an attempt no earlier retry followed (an unanswered query is asked
        -- again once; a second candidate is another lookup of the same name begun just then)
        SELECT *, arrayMap((v, c) -> if(intDiv(v, shift) = 3 AND c = 0, toUInt64(0), v), newid, nid_claims) AS nid
        FROM
        (
        SELECT *, arrayFold((acc, v) -> arrayPushBack(acc, toUInt64(if(intDiv(v, shift) = 3 AND NOT has(acc, v % slot), v % slot, 0))),
            newid, emptyArrayUInt64()) AS nid_claims
        FROM
        (
            SELECT *,
                arrayExists(i -> intDiv(main[i], shift) = 5 AND port[main[i] % slot] = port[i]
                        AND tt[i] - tt[main[i] % slot] >= min_ns, idx) AS resends,
                arrayMap((ti, qhi, qti, idi, porti, pci, pdi, wj, wt, wqh, wqt, wid, wport, wres, wrts) -> arrayMax(arrayMap(
                        (j, tj, qhj, qtj, idj, portj, resj, rtsj) -> multiIf(
                        j = pci AND pdi = 1, 4 * shift + j,
                        qhj = qhi AND qtj = qti AND idj != idi AND resj >= 4
                            AND ti >= rtsj AND ti - rtsj <= next_ns,
                        3 * shift + toUInt64(4194303 - least(intDiv(ti - rtsj, 1000), 4194303)) * slot + j,
                        qhj = qhi AND qtj = qti AND idj != idi AND resj = 0
                            AND ti - tj BETWEEN min_ns AND max_ns
                            AND ((ti - tj) - round((ti - tj) / grid_ns) * grid_ns) BETWEEN -jitter_ns AND glate
                            AND (spacing = 0 OR round((ti - tj) / grid_ns) = spacing),
                        3 * shift + toUInt64(4194303 - least(intDiv(abs((ti - tj) - round((ti - tj) / grid_ns) * grid_ns), 1000), 4194303)) * slot + j, 0), wj, wt, wqh, wqt, wid, wport, wres, wrts)),
                    tt, qh, qt, id, port, pair_cand, paired, w_j, w_tt, w_qh, w_qt, w_id, w_port, w_res, w_rts) AS newid
            FROM
            (
                -- the best earlier attempt to follow, as score * 2^32 + index (0: none)
                SELECT *,
                    arrayMap((ti, qhi, qti, idi, porti, barei, oqh, ott, wj, wt, wqh, wqt, wid, wport, wres, wrts, wbare, wpn, wpnt) -> arrayMax(arrayMap(
                        (j, tj, qhj, qtj, idj, portj, resj, rtsj, barej, pnj, pntj) -> multiIf(
                        ti - tj > max_ns, 0,
                        qhj = qhi AND qtj = qti AND idj = idi, 5 * shift + j,
                        qhj = qhi AND qtj != qti AND portj = porti AND ti - tj <= 1000000000, 4 * shift + j,
                        -- glibc's single-request-reopen (set in resolv.conf, or switched on by glibc itself
                        -- after a pair timed out with one answer): AAAA from a new socket right after
                        -- the response to the A (within reopen_window_ms: on a busy host closing one
                        -- socket and opening the next can take over 10 ms), from a socket that asked
                        -- the name only as A, in groups that resend a lost query with its id (glibc)
                        glibc AND qhj = qhi AND qtj = 1 AND qti = 28 AND portj != porti AND pnj = pntj AND resj > 0
                            AND ti >= rtsj AND ti - rtsj <= reopen_ns, 4 * shift + j,
                        qhj != qhi AND (qhj = oqh OR ott < rtsj) AND resj > 1 AND ti >= rtsj AND ti - rtsj <= next_ns
                            AND (NOT barej OR as_is_first) AND (NOT barei OR NOT as_is_first),
                            2 * shift + toUInt64(4194303 - least(intDiv(ti - rtsj, 1000), 4194303)) * slot + j,
                        qhj != qhi AND resj != 1 AND ti - tj >= min_ns
                            AND ((ti - tj) - round((ti - tj) / grid_ns) * grid_ns) BETWEEN -jitter_ns AND glate
                            AND (spacing = 0 OR toUInt64(round((ti - tj) / grid_ns))
                                IN (spacing, if(nameservers >= 3, intDiv(2 * spacing, 3), spacing),
                                    if(nameservers >= 3, intDiv(4 * spacing, 3), spacing)))
                            AND (NOT barej OR as_is_first) AND (NOT barei OR NOT as_is_first),
                            1 * shift + toUInt64(4194303 - least(intDiv(abs((ti - tj) - round((ti - tj) / grid_ns) * grid_ns), 1000), 4194303)) * slot + j,
                        0), wj, wt, wqh, wqt, wid, wport, wres, wrts, wbare, wpn, wpnt)),
                        tt, qh, qt, id, port, bare, other_qh, other_tt, w_j, w_tt, w_qh, w_qt, w_id, w_port, w_res, w_rts, w_bare, w_pn, w_pnt) AS main
                FROM
                (
                    SELECT *,
                        multiIf(glibc AND bare_asked >= suffixed_asked * 1.25 + 4, true,
                            glibc AND suffixed_asked >= bare_asked * 1.25 + 4, false,
                            abs(toInt64(first_votes) - toInt64(last_votes)) >= 2, first_votes > last_votes,
                            length(splitByChar('.', base)) - 1 >= ndots) AS as_is_first
                    FROM
                    (
                        SELECT *,
                            -- how many queries (type and id) of the whole capture ask the base as-is, and
                            -- the most that ask it with one suffix: every lookup asks its first name, a
                            -- later one only when the names before it failed (glibc: timed out or got a
                            -- negative answer), so the first is asked at least as often, and clearly
                            -- more often when most lookups succeed with it. Only where a lost query is
                            -- resent with its id (glibc): Go asks again with a new id, so a name that
                            -- times out is asked more often than the names before it
                            -- (two such resends on the grid: Go's ids are random, two equal ids of one
                            -- name and type a whole number of seconds apart are rare, and counting them
                            -- against new ids would not do: lookups back to back ask with new ids then)
                            arrayCount(x -> x > 0 AND x % 2 = 0, gaps) >= 2 AS glibc,
                            arrayMax(arrayPushBack(arrayFilter((a, b) -> b, asked, bare), 0)) AS bare_asked,
                            arrayMax(arrayPushBack(arrayFilter((a, b) -> NOT b, asked, bare), 0)) AS suffixed_asked,
                            arraySum(arrayMap((i, s) -> s AND bare[i - 1], idx, steps)) AS first_votes,
                            arraySum(arrayMap((i, s) -> s AND bare[i], idx, steps)) AS last_votes,
                            -- the group's retry spacing, in grid units: the commonest gap from an
                            -- unanswered attempt to the next of the same name and type (the latest such
                            -- in its window: with many lookups of one name side by side, it can be dozens
                            -- of attempts back), from resends of the same id where there are any (glibc),
                            -- else from all (Go)
                            intDiv(if(arrayExists(x -> x > 0 AND x % 2 = 0, gaps),
                                arrayReduce('topK(1)', arrayFilter(x -> x > 0 AND x % 2 = 0, gaps))[1],
                                arrayReduce('topK(1)', arrayFilter(x -> x > 0, gaps))[1]), 2) AS spacing,
                            arrayMap(o -> qh[o], other) AS other_qh,
                            -- how late a retry may be in this group: as late as its resends of an
                            -- identical query were (plus retry_jitter_ms), at most retry_late_ms
                            toInt64(greatest(jitter_ns, least(late_ns, arrayMax(resend_late) + jitter_ns))) AS glate,
                            -- pairs from two sockets, in time order: an attempt pairs with its candidate
                            -- unless that one is already in a pair (1: second of a pair, 2: first)
                            arrayFold((acc, c) -> if(c != 0 AND acc[c] = 0,
                                    arrayPushBack(arrayMap((v, k) -> if(k = c, toUInt8(2), v), acc, arrayEnumerate(acc)), toUInt8(1)),
                                    arrayPushBack(acc, toUInt8(0))),
                                pair_cand, emptyArrayUInt8()) AS paired,
                            arrayMap(o -> tt[o], other) AS other_tt
                        FROM
                        (
                            SELECT *,
                                arrayMap((i, ti, qhi, qti, idi, wj, wt, wqh, wqt, wid, wres) -> arrayFirst(x -> x > 0, arrayReverse(arrayMap(
                                    (j, tj, qhj, qtj, idj, resj) ->
                                    if(qhj = qhi AND qtj = qti AND resj = 0 AND ti - tj BETWEEN min_ns AND max_ns
                                        AND ((ti - tj) - round((ti - tj) / grid_ns) * grid_ns) BETWEEN -jitter_ns AND late_ns,
                                        toUInt64(round((ti - tj) / grid_ns)) * 2 + (idj != idi), toUInt64(0)),
                                    wj, wt, wqh, wqt, wid, wres))),
                                    idx, tt, qh, qt, id, w_j, w_tt, w_qh, w_qt, w_id, w_res) AS gaps,
                                -- how far after the grid each resend of an identical A query came (0: none):
                                -- the group's timers fire that late (a busy host); not AAAA, which in
                                -- single-request mode waits for the A's response, so its resends move
                                -- with the response times
                                arrayMap((ti, qhi, qti, idi, wt, wqh, wqt, wid, wres) -> arrayMax(arrayPushBack(arrayMap(
                                    (tj, qhj, qtj, idj, resj) ->
                                    if(qti = 1 AND qhj = qhi AND qtj = qti AND idj = idi AND resj = 0 AND ti - tj BETWEEN min_ns AND max_ns
                                        AND ((ti - tj) - round((ti - tj) / grid_ns) * grid_ns) BETWEEN 0 AND late_ns,
                                        toInt64((ti - tj) - round((ti - tj) / grid_ns) * grid_ns), toInt64(0)),
                                    wt, wqh, wqt, wid, wres), toInt64(0))),
                                    tt, qh, qt, id, w_tt, w_qh, w_qt, w_id, w_res) AS resend_late,
                                -- the nearest earlier attempt of the same name and another type, from another
                                -- socket, within pair_window_ms: the partner if this is the second query of
                                -- a lookup that asks A and AAAA from two sockets (Go), both sockets used for
                                -- this one query of the name (a port that asks the name twice is glibc's)
                                arrayMap((ti, qhi, qti, porti, pni, wj, wt, wqh, wqt, wport, wpn) -> arrayMax(arrayMap((j, tj, qhj, qtj, portj, pnj) ->
                                    if(qhj = qhi AND qtj != qti AND portj != porti AND ti - tj <= pair_ns AND pni = 1 AND pnj = 1, j, 0),
                                    wj, wt, wqh, wqt, wport, wpn)), tt, qh, qt, port, pn, w_j, w_tt, w_qh, w_qt, w_port, w_pn) AS pair_cand,
                                -- the latest earlier attempt of another name
                                arrayMap((qhi, wj, wqh) -> arrayFirst((k, q) -> q != qhi, arrayReverse(wj), arrayReverse(wqh)),
                                    qh, w_j, w_qh) AS other,
                                -- steps between neighbours from bare to suffixed and back, right after a negative answer
                                arrayMap(i -> i > 1 AND bare[i - 1] != bare[i] AND qh[i - 1] != qh[i]
                                    AND res[i - 1] > 1 AND tt[i] >= rts[i - 1] AND tt[i] - rts[i - 1] <= next_ns,
                                    idx) AS steps
                            FROM
                            (
                            -- each attempt's window: the (up to) 96 attempts before it, one array per field,
                            -- so that the rules above read them without capturing whole arrays in lambdas
                            -- (ClickHouse copies a captured array for every element it is applied to)
                            SELECT *,
                                arrayMap((i, l) -> range(l, i), idx, lo) AS w_j,
                                arrayMap((i, l) -> arraySlice(tt, l, i - l), idx, lo) AS w_tt,
                                arrayMap((i, l) -> arraySlice(qh, l, i - l), idx, lo) AS w_qh,
                                arrayMap((i, l) -> arraySlice(qt, l, i - l), idx, lo) AS w_qt,
                                arrayMap((i, l) -> arraySlice(id, l, i - l), idx, lo) AS w_id,
                                arrayMap((i, l) -> arraySlice(port, l, i - l), idx, lo) AS w_port,
                                arrayMap((i, l) -> arraySlice(res, l, i - l), idx, lo) AS w_res,
                                arrayMap((i, l) -> arraySlice(rts, l, i - l), idx, lo) AS w_rts,
                                arrayMap((i, l) -> arraySlice(bare, l, i - l), idx, lo) AS w_bare,
                                arrayMap((i, l) -> arraySlice(pn, l, i - l), idx, lo) AS w_pn,
                                arrayMap((i, l) -> arraySlice(pnt, l, i - l), idx, lo) AS w_pnt
                            FROM
                            (
                            SELECT *,
                                arrayMap(i -> toUInt32(greatest(1, toInt64(i) - 96)), idx) AS lo,
                                arrayMap(x -> cityHash64(x), qn) AS qh,
                                arrayMap(x -> x = base, qn) AS bare,
                                -- how many attempts of the group ask the attempt's name from its port
                                arrayMap((a, b) -> toUInt32(a + b - 1), arrayEnumerateUniq(arrayZip(port, qn)),
                                    arrayReverse(arrayEnumerateUniq(arrayReverse(arrayZip(port, qn))))) AS pn,
                                -- and how many ask it with the attempt's type (pn = pnt: the port asked one type)
                                arrayMap((a, b) -> toUInt32(a + b - 1), arrayEnumerateUniq(arrayZip(port, qn, qt)),
                                    arrayReverse(arrayEnumerateUniq(arrayReverse(arrayZip(port, qn, qt))))) AS pnt
                            FROM
                            (
                                SELECT host, client_ip, lib, base, ndots, g.11 AS prim, g.2 AS rnk, g.12 AS bkt,
                                    g.1 AS tt, g.3 AS qt, g.4 AS id, g.5 AS qn, g.6 AS port, g.7 AS res, g.8 AS rts,
                                    g.9 AS qnames, g.10 AS servers, length(arrayDistinct(servers)) AS nameservers, g.13 AS asked,
                                    arrayEnumerate(g) AS idx
                                FROM
                                (
        SELECT host, client_ip, lib, base, any(ndots) AS ndots,
            arraySort(groupArray((ts_ns, rn, qtype, id, qname_key, client_port, res, rts_ns, qname, server_ip, chunk = own_chunk, own_bucket, asked))) AS g
        FROM
        (
        SELECT *,
            (own_bucket, intDiv(rn, chunk_rows)) AS own_chunk,
            -- each attempt is also context: for the next chunk of its bucket, and when it is among
            -- the bucket's last chunk_rows attempts, for the first chunk of the next bucket
            arrayConcat([own_chunk],
                if(intDiv(rn, chunk_rows) < intDiv(n - 1, chunk_rows), [(own_bucket, intDiv(rn, chunk_rows) + 1)], []),
                if(n - rn <= chunk_rows, [(own_bucket + 1, toUInt64(0))], [])) AS chunks
        FROM
        (
        SELECT *,
            toUInt64(row_number() OVER wb - 1) AS rn,
            -- how many queries ask the attempt's name in the whole capture (not only in the bucket:
            -- a bucket cuts lookups, and ends of lookups ask other names than beginnings)
            toUInt64(uniqExact((qtype, id)) OVER wn) AS asked,
            toUInt64(count() OVER wb) AS n
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
                toUInt64(intDiv(ts_ns, bucket_ns)) AS own_bucket
            FROM dns_transactions AS t
            LEFT JOIN
            (
                SELECT host, arraySort(x -> -length(x), groupArray(suffix)) AS suffixes, max(ndots) AS ndots
                FROM dns_search_suffixes GROUP BY host
            ) AS s ON t.host = s.host
        )
        WINDOW wb AS (PARTITION BY host, client_ip, lib, base, own_bucket ORDER BY ts_ns, qtype, id, qname_key, client_port
            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING),
            wn AS (PARTITION BY host, client_ip, lib, base, qname_key)
        )
        )
        ARRAY JOIN chunks AS chunk
        GROUP BY host, client_ip, lib, base, chunk
                                )
                            )
                            )
                        )
                            )
                            )
                        )
                    )
                )
        )
        )
                        )
                    )
                    ARRAY JOIN tt AS ts_ns, qnames AS qname, qn AS qname_key, qt AS qtype, id, port AS client_port,
                        servers AS server_ip, res, rts AS rts_ns, links AS link, parents AS parent_key,
                        bkt AS bucket, rnk AS rn, prim AS primary
                    WHERE primary
                )
                ARRAY JOIN [bucket, bucket + 1] AS pass_bucket, [1, 0] AS own
                GROUP BY host, client_ip, lib, base, pass_bucket
            )
        )
    )
)
ARRAY JOIN
    b.3 AS ts_ns, b.4 AS own, b.5 AS qname, b.6 AS qname_key, b.7 AS qtype, b.8 AS id, b.9 AS client_port,
    b.10 AS server_ip, b.11 AS res, b.12 AS rts_ns, b.13 AS link, b.14 AS as_is_first, lookup AS lookup_ns
WHERE own = 1;
