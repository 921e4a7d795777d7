-- dns_lookups: one row per stub-resolver lookup (what one getaddrinfo() or LookupHost call put on
-- the wire), built from the linked attempts of dns_lookup_attempts.
--
-- Each name tried gets a result from the last attempt of each query type (an answer the stub
-- asked again after, as glibc does when only one of A and AAAA came back, was not taken).
-- For a resolver that sends A and AAAA from one socket (glibc: a port is used twice): when the
-- last attempt of the type sent first got no answer (glibc's single-request resend failed, or
-- the last round was lost), servfail if some attempt of the name got SERVFAIL or another error
-- rcode (glibc moves on to the next nameserver then, and reports the SERVFAIL when no server
-- answers), else timeout; otherwise answer when one got a positive answer, else the negative
-- answer. For a resolver with a socket per query (Go): timeout when the last attempt of
-- some type got no answer, else answer or the negative answer.
-- A name followed by another name cannot have been answered as far as the stub is concerned
-- (glibc drops a positive answer when its re-sent pair partner gets none): its result is then
-- its negative answer or timeout.
-- servers (and name_servers, per name) are the DNS servers asked, in the order they were first
-- asked.
-- name_answered_qtypes and name_unanswered_qtypes list, per name, the query types whose last
-- attempt got a positive answer, or none: what the wire says, also for an answer the stub did
-- not take (name_results says what it took), e.g. A answered and AAAA not, then the next name.
-- The lookup's outcome is 'answered' when a name was answered; otherwise 'timeout' when a name
-- timed out (loss is the root cause, whatever came after); otherwise the last name's negative
-- answer: 'nxdomain', 'nodata', 'servfail' (also other error rcodes) or 'refused'.
-- masked_timeout = 1 when the lookup got no positive answer, a name timed out and another got
-- NXDOMAIN or NODATA: the application may have printed "no such host" for a name that exists.
-- time_lost_ms adds up, per name, the time from its first attempt to its last (waits before
-- retries; A and AAAA counted once), plus, for a name that timed out, the wait after its last
-- attempt (until the next name, or one retry spacing when it was the last name). end_ts
-- includes that last wait.
CREATE OR REPLACE VIEW dns_lookups AS
WITH
    -- query type mnemonics, the same as lossreport.TypeName (TestTypeNames checks); TYPEn otherwise
    [1, 2, 5, 6, 12, 15, 16, 28, 33, 35, 43, 48, 64, 65, 255] AS type_codes,
    ['A', 'NS', 'CNAME', 'SOA', 'PTR', 'MX', 'TXT', 'AAAA', 'SRV', 'NAPTR', 'DS', 'DNSKEY', 'SVCB', 'HTTPS', 'ANY'] AS type_names
SELECT
    host,
    replaceRegexpOne(toString(client_ip), '^::ffff:([0-9.]+)$', '\\1') AS client_ip,
    if(length(names) > 1 OR has(names, base), base, names[1]) AS name,
    arrayMap(t -> transform(t, type_codes, type_names, concat('TYPE', toString(t))), arraySort(arrayDistinct(arrayFlatten(name_qtypes)))) AS qtypes,
    fromUnixTimestamp64Nano(start_ns, 'UTC') AS start_ts,
    fromUnixTimestamp64Nano(end_ns, 'UTC') AS end_ts,
    round((end_ns - start_ns) / 1e6, 3) AS duration_ms,
    attempts,
    names AS names_tried,
    results AS name_results,
    arrayMap(x -> round((x - start_ns) / 1e6, 3), firsts) AS name_offsets_ms,
    arrayMap(s -> arrayMap(x -> round((x - start_ns) / 1e6, 3), s), sends) AS name_sends_ms,
    arrayMap(s -> arrayMap(x -> replaceRegexpOne(toString(x), '^::ffff:([0-9.]+)$', '\\1'), s), name_servers) AS name_servers,
    name_answered AS name_answered_qtypes,
    name_unanswered AS name_unanswered_qtypes,
    arrayDistinct(arrayFlatten(name_servers)) AS servers,
    retries,
    toUInt32(length(names) - 1) AS search_fallbacks,
    multiIf(has(results, 'answer'), 'answered', has(results, 'timeout'), 'timeout', results[-1] = 'error', 'servfail', results[-1]) AS outcome,
    toUInt8(outcome != 'answered' AND has(results, 'timeout') AND (has(results, 'nxdomain') OR has(results, 'nodata'))) AS masked_timeout,
    round(arraySum(lost) / 1e6, 3) AS time_lost_ms,
    lib,
    base
FROM
(
    SELECT *,
        tupleElement(v, 1) AS firsts, tupleElement(v, 2) AS names, tupleElement(v, 3) AS raw_results,
        tupleElement(v, 4) AS lasts, tupleElement(v, 5) AS spans, tupleElement(v, 6) AS spacings,
        tupleElement(v, 7) AS sends, tupleElement(v, 8) AS name_servers, tupleElement(v, 9) AS name_qtypes, tupleElement(v, 10) AS neg_results,
        tupleElement(v, 11) AS name_answered, tupleElement(v, 12) AS name_unanswered,
        firsts[1] AS start_ns,
        -- a stub that goes on to another name did not take an answer for this one
        arrayMap(k -> if(k < length(names) AND raw_results[k] = 'answer', if(neg_results[k] != '', neg_results[k], 'timeout'),
            raw_results[k]), arrayEnumerate(names)) AS results,
        arrayMap(k -> spans[k] + if(results[k] = 'timeout',
            if(k < length(names), firsts[k + 1] - lasts[k], spacings[k]), 0), arrayEnumerate(names)) AS lost,
        greatest(arrayMax(lasts), last_response_ns,
            if(results[-1] = 'timeout', lasts[-1] + spacings[-1], 0)) AS end_ns
    FROM
    (
    SELECT host, client_ip, lib, base, lookup_ts,
        arraySort(groupArray((first_ns, qname_key, result, last_ns, span_ns, spacing_ns, sends, servers, qtypes, neg_result, answered_types, unanswered_types))) AS v,
        sum(n_attempts) AS attempts,
        sum(n_retries) AS retries,
        max(last_response_ns) AS last_response_ns
    FROM
    (
        SELECT host, client_ip, lib, base, lookup_ts, qname_key,
            min(tmin) AS first_ns, max(tmax) AS last_ns,
            max(tmax - tmin) AS span_ns,
            max(if(cnt > 1, intDiv(tmax - tmin, cnt - 1), 0)) AS spacing_ns,
            sum(cnt) AS n_attempts, sum(cnt - 1) AS n_retries,
            length(arrayDistinct(arrayFlatten(groupArray(ports)))) < sum(cnt) AS one_socket,
            argMin(last_unanswered, (tmin, qtype)) AS first_type_unanswered,
            max(got_error) AS any_error,
            multiIf(one_socket AND first_type_unanswered AND any_error, 'servfail',
                one_socket AND first_type_unanswered, 'timeout',
                max(pos), 'answer',
                NOT one_socket AND max(last_unanswered), 'timeout',
                max(nx), 'nxdomain', max(nd), 'nodata', max(rf), 'refused', max(sf), 'servfail', 'error') AS result,
            multiIf(one_socket AND first_type_unanswered AND any_error, 'servfail',
                if(one_socket, first_type_unanswered, max(last_unanswered)), '', max(nx), 'nxdomain', max(nd), 'nodata',
                max(rf), 'refused', max(sf), 'servfail', '') AS neg_result,
            max(rlast) AS last_response_ns,
            arraySort(arrayFlatten(groupArray(send_ns))) AS sends,
            arrayDistinct(arrayMap(x -> x.2, arraySort(arrayFlatten(groupArray(srv))))) AS servers,
            groupArray(qtype) AS qtypes,
            arrayMap(x -> x.2, arraySort(groupArrayIf((qtype, type_name), pos))) AS answered_types,
            arrayMap(x -> x.2, arraySort(groupArrayIf((qtype, type_name), last_unanswered))) AS unanswered_types
        FROM
        (
            SELECT host, client_ip, lib, base, lookup_ts, qname_key, qtype,
                transform(qtype, type_codes, type_names, concat('TYPE', toString(qtype))) AS type_name,
                count() AS cnt,
                groupUniqArray(client_port) AS ports,
                min(toUnixTimestamp64Nano(ts)) AS tmin,
                max(toUnixTimestamp64Nano(ts)) AS tmax,
                argMax(result, ts) AS last_result,
                last_result = '' AS last_unanswered,
                last_result = 'answer' AS pos,
                last_result != '' AS responded,
                last_result = 'nxdomain' AS nx,
                last_result = 'nodata' AS nd,
                last_result = 'refused' AS rf,
                last_result IN ('servfail', 'error') AS sf,
                countIf(result IN ('servfail', 'error')) > 0 AS got_error,
                max(ifNull(toUnixTimestamp64Nano(response_ts), 0)) AS rlast,
                groupArray(toUnixTimestamp64Nano(ts)) AS send_ns,
                groupArray((toUnixTimestamp64Nano(ts), server_ip)) AS srv
            FROM dns_lookup_attempts
            GROUP BY host, client_ip, lib, base, lookup_ts, qname_key, qtype
        )
        GROUP BY host, client_ip, lib, base, lookup_ts, qname_key
    )
    GROUP BY host, client_ip, lib, base, lookup_ts
    )
);
