-- dns_transactions: one row per query message (each attempt), with the response that answered it.
--
-- A query matches the first response with the same (host, client ip/port, server ip/port,
-- transport, id, lower(qname), qtype) at or after it and before the next copy of the same query
-- (a retransmission with the same id and port takes over the wait). Outcomes:
--   answered    a response arrived within the match window (setting match_window_ms, default 10000)
--   late        a response arrived, but after the match window
--   unanswered  no response before the next copy, and the capture went on past the window
--   unknown     no response, and the capture of this host ended before the window closed
-- The query's EDNS and header flags (edns, edns_udp_size, rd, ad, cd) come along: the lookup views
-- use them to tell apart the resolver libraries of one client.
CREATE OR REPLACE VIEW dns_transactions AS
WITH
    (SELECT ifNull(argMaxOrNull(value, updated_at), 10000) FROM dnsloss_settings WHERE name = 'match_window_ms') AS match_window_ms,
    toInt64(match_window_ms * 1000000) AS window_ns
SELECT
    q.host AS host,
    q.ts AS query_ts,
    q.src_ip AS client_ip,
    q.src_port AS client_port,
    q.dst_ip AS server_ip,
    q.dst_port AS server_port,
    q.transport AS transport,
    q.id AS id,
    q.qname AS qname,
    q.qtype AS qtype,
    q.qclass AS qclass,
    (r.response_ts >= q.ts AND r.response_ts < q.next_copy_ts) AS responded,
    toUnixTimestamp64Nano(r.response_ts) - toUnixTimestamp64Nano(q.ts) AS wait_ns,
    multiIf(
        responded AND wait_ns <= window_ns, 'answered',
        responded, 'late',
        toUnixTimestamp64Nano(e.capture_end) - toUnixTimestamp64Nano(q.ts) < window_ns, 'unknown',
        'unanswered') AS outcome,
    if(responded, r.response_ts, NULL) AS response_ts,
    if(responded, round(wait_ns / 1e6, 3), NULL) AS rtt_ms,
    if(responded, r.rcode, NULL) AS rcode,
    if(responded, r.ancount, NULL) AS ancount,
    q.qname_key AS qname_key,
    q.edns AS edns,
    q.edns_udp_size AS edns_udp_size,
    q.rd AS rd,
    q.ad AS ad,
    q.cd AS cd
FROM
(
    SELECT host, ts, src_ip, src_port, dst_ip, dst_port, transport, id, qname, qname_key, qtype, qclass,
        edns, edns_udp_size, rd, ad, cd,
        leadInFrame(ts, 1, toDateTime64('2262-01-01 00:00:00', 9, 'UTC')) OVER (
            PARTITION BY host, src_ip, src_port, dst_ip, dst_port, transport, id, qname_key, qtype
            ORDER BY ts ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_copy_ts
    FROM dns_messages
    WHERE qr = 0
) AS q
ASOF LEFT JOIN
(
    SELECT host, dst_ip AS client_ip, dst_port AS client_port, src_ip AS server_ip, src_port AS server_port,
        transport, id, qname_key, qtype, ts AS response_ts, rcode, ancount
    FROM dns_messages
    WHERE qr = 1
) AS r
ON q.host = r.host AND q.src_ip = r.client_ip AND q.src_port = r.client_port
    AND q.dst_ip = r.server_ip AND q.dst_port = r.server_port AND q.transport = r.transport
    AND q.id = r.id AND q.qname_key = r.qname_key AND q.qtype = r.qtype
    AND r.response_ts >= q.ts
LEFT JOIN
(
    SELECT host, max(ts) AS capture_end FROM dns_messages GROUP BY host
) AS e
ON q.host = e.host;
