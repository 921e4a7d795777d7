-- dns_transactions: one row per query message (each attempt), with the response that answered it.
--
-- A query matches the first response with the same (host, client ip/port, server ip/port,
-- transport, id, lower(qname), qtype) at or after it and before the next copy of the same query
-- (a retransmission with the same id and port takes over the wait). The same key matches UDP
-- (reassembled IP fragments included) and TCP (transport 'tcp': the connection's ports).
--
-- Clock skew: a response stamped up to match_skew_ms (setting, default 0.5) BEFORE its query
-- still matches it, with an rtt of 0. Within one capture point a response can be stored before
-- its query when the two timestamps come from different clocks or points: outgoing packets are
-- stamped in software as they are queued, incoming ones may be stamped by the NIC; a pcapng file
-- mixes interfaces with their own clocks and resolutions. Those differences are microseconds to
-- a fraction of a millisecond, while a local resolver answers in tens of microseconds, so a
-- larger inversion is a clock step, which no tolerance repairs, and a response more than that
-- before a query is taken as belonging to an earlier exchange. Raise it where the capture's
-- clocks are known to disagree more (`analyzer settings set match_skew_ms 5`).
--
-- Outcomes:
--   answered    a response arrived within the match window (setting match_window_ms, default 10000)
--   late        a response arrived, but after the match window
--   unanswered  no response before the next copy of the query (the client gave up waiting on
--               it and sent it again), or no response and the capture went on past the window
--   unknown     no response, no next copy, and the capture of this host ended before the
--               window closed (a response may have come after the capture)
-- The query's EDNS and header flags (edns, edns_udp_size, rd, ad, cd) come along: the lookup views
-- use them to tell apart the resolver libraries of one client.
--
-- Truncated answers (TC): a UDP attempt answered with TC=1 is answered (the resolver answered;
-- the client goes on over TCP); truncated_response is 1 for it, and tcp_retry_ts is the time of
-- the first TCP query for the same name and type from the same client to the same server within
-- the match window after that response (NULL if the client did not retry over TCP in the capture).
-- How: one pass. Queries and responses are put in one sequence per transaction key (a 64-bit
-- hash of the key, response timestamps moved later by the skew) ordered by time; a query is
-- answered by the row that follows it when that row is a response. A second, small pass over
-- truncated UDP responses and TCP queries finds the TCP retries. (A join of queries to responses
-- on the nine-column key cost five times as much over 10 million messages: BENCHMARKS.md.)
CREATE OR REPLACE VIEW dns_transactions AS
WITH
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'match_window_ms'), 10000) AS match_window_ms,
    ifNull((SELECT ifNotFinite(argMaxOrNull(value, updated_at), NULL) FROM dnsloss_settings WHERE name = 'match_skew_ms'), 0.5) AS match_skew_ms,
    toInt64(match_window_ms * 1000000) AS window_ns,
    toInt64(match_skew_ms * 1000000) AS skew_ns
SELECT
    p.host AS host,
    p.ts AS query_ts,
    p.src_ip AS client_ip,
    p.src_port AS client_port,
    p.dst_ip AS server_ip,
    p.dst_port AS server_port,
    p.transport AS transport,
    p.id AS id,
    p.qname AS qname,
    p.qtype AS qtype,
    p.qclass AS qclass,
    p.next_qr = 1 AS responded,
    greatest(toUnixTimestamp64Nano(p.next_ts) - toUnixTimestamp64Nano(p.ts), 0) AS wait_ns,
    multiIf(
        responded AND wait_ns <= window_ns, 'answered',
        responded, 'late',
        p.next_qr = 0, 'unanswered',
        toUnixTimestamp64Nano(e.capture_end) - toUnixTimestamp64Nano(p.ts) < window_ns, 'unknown',
        'unanswered') AS outcome,
    if(responded, p.next_ts, NULL) AS response_ts,
    if(responded, round(wait_ns / 1e6, 3), NULL) AS rtt_ms,
    if(responded, p.next_rcode, NULL) AS rcode,
    if(responded, p.next_ancount, NULL) AS ancount,
    toUInt8(responded AND p.next_tc = 1) AS truncated_response,
    if(truncated_response = 1 AND p.transport = 'udp' AND t.tcp_ts >= p.next_ts
        AND toUnixTimestamp64Nano(t.tcp_ts) - toUnixTimestamp64Nano(p.next_ts) <= window_ns,
        t.tcp_ts, NULL) AS tcp_retry_ts,
    p.qname_key AS qname_key,
    p.edns AS edns,
    p.edns_udp_size AS edns_udp_size,
    p.rd AS rd,
    p.ad AS ad,
    p.cd AS cd
FROM
(
    SELECT *
    FROM
    (
        SELECT host, ts, qr, src_ip, src_port, dst_ip, dst_port, transport, id, qname, qname_key, qtype, qclass,
            edns, edns_udp_size, rd, ad, cd, k,
            leadInFrame(qr, 1, 255) OVER w AS next_qr,
            leadInFrame(ts, 1) OVER w AS next_ts,
            leadInFrame(rcode, 1) OVER w AS next_rcode,
            leadInFrame(ancount, 1) OVER w AS next_ancount,
            leadInFrame(tc, 1) OVER w AS next_tc
        FROM
        (
            SELECT host, ts, qr, src_ip, src_port, dst_ip, dst_port, transport, id, qname, qname_key, qtype, qclass,
                edns, edns_udp_size, rd, ad, cd, rcode, ancount, tc,
                if(qr = 0,
                    cityHash64(host, src_ip, src_port, dst_ip, dst_port, transport, id, qname_key, qtype),
                    cityHash64(host, dst_ip, dst_port, src_ip, src_port, transport, id, qname_key, qtype)) AS k,
                toUnixTimestamp64Nano(ts) + if(qr = 1, skew_ns, 0) AS sort_ns
            FROM dns_messages
        )
        WINDOW w AS (PARTITION BY k ORDER BY sort_ns, qr ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)
    )
    WHERE qr = 0
) AS p
LEFT JOIN
(
    -- Truncated UDP responses, each with the first TCP query for the same name and type from the
    -- same client to the same server after it.
    SELECT k, ts AS response_ts, tcp_ts
    FROM
    (
        SELECT qr, transport, ts,
            cityHash64(host, dst_ip, dst_port, src_ip, src_port, transport, id, qname_key, qtype) AS k,
            min(if(qr = 0, ts, NULL)) OVER (
                PARTITION BY cityHash64(host, if(qr = 0, src_ip, dst_ip), if(qr = 0, dst_ip, src_ip), qname_key, qtype)
                ORDER BY ts ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS tcp_ts
        FROM dns_messages
        WHERE (qr = 1 AND tc = 1 AND transport = 'udp') OR (qr = 0 AND transport = 'tcp')
    )
    WHERE qr = 1 AND tcp_ts IS NOT NULL
) AS t
ON p.k = t.k AND p.next_ts = t.response_ts
LEFT JOIN
(
    SELECT host, max(ts) AS capture_end FROM dns_messages GROUP BY host
) AS e
ON p.host = e.host;
