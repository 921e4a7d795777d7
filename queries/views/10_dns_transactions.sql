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
--   unanswered  no response before the next copy, and the capture went on past the window
--   unknown     no response, and the capture of this host ended before the window closed
--
-- Truncated answers (TC): a UDP attempt answered with TC=1 is answered (the resolver answered;
-- the client goes on over TCP); truncated_response is 1 for it, and tcp_retry_ts is the time of
-- the first TCP query for the same name and type from the same client to the same server within
-- the match window after that response (NULL if the client did not retry over TCP in the capture).
CREATE OR REPLACE VIEW dns_transactions AS
WITH
    (SELECT ifNull(argMaxOrNull(value, updated_at), 10000) FROM dnsloss_settings WHERE name = 'match_window_ms') AS match_window_ms,
    (SELECT ifNull(argMaxOrNull(value, updated_at), 0.5) FROM dnsloss_settings WHERE name = 'match_skew_ms') AS match_skew_ms,
    toInt64(match_window_ms * 1000000) AS window_ns,
    toInt64(match_skew_ms * 1000000) AS skew_ns
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
    (r.response_ts >= q.match_from AND r.response_ts < q.next_copy_ts) AS responded,
    greatest(toUnixTimestamp64Nano(r.response_ts) - toUnixTimestamp64Nano(q.ts), 0) AS wait_ns,
    multiIf(
        responded AND wait_ns <= window_ns, 'answered',
        responded, 'late',
        toUnixTimestamp64Nano(e.capture_end) - toUnixTimestamp64Nano(q.ts) < window_ns, 'unknown',
        'unanswered') AS outcome,
    if(responded, r.response_ts, NULL) AS response_ts,
    if(responded, round(wait_ns / 1e6, 3), NULL) AS rtt_ms,
    if(responded, r.rcode, NULL) AS rcode,
    if(responded, r.ancount, NULL) AS ancount,
    toUInt8(responded AND r.tc = 1) AS truncated_response,
    if(truncated_response = 1 AND q.transport = 'udp' AND t.tcp_ts >= r.response_ts
        AND toUnixTimestamp64Nano(t.tcp_ts) - toUnixTimestamp64Nano(r.response_ts) <= window_ns,
        t.tcp_ts, NULL) AS tcp_retry_ts
FROM
(
    SELECT host, ts, src_ip, src_port, dst_ip, dst_port, transport, id, qname, qname_key, qtype, qclass,
        fromUnixTimestamp64Nano(toUnixTimestamp64Nano(ts) - skew_ns, 'UTC') AS match_from,
        leadInFrame(ts, 1, toDateTime64('2262-01-01 00:00:00', 9, 'UTC')) OVER (
            PARTITION BY host, src_ip, src_port, dst_ip, dst_port, transport, id, qname_key, qtype
            ORDER BY ts ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_copy_ts
    FROM dns_messages
    WHERE qr = 0
) AS q
ASOF LEFT JOIN
(
    SELECT host, dst_ip AS client_ip, dst_port AS client_port, src_ip AS server_ip, src_port AS server_port,
        transport, id, qname_key, qtype, ts AS response_ts, rcode, ancount, tc
    FROM dns_messages
    WHERE qr = 1
) AS r
ON q.host = r.host AND q.src_ip = r.client_ip AND q.src_port = r.client_port
    AND q.dst_ip = r.server_ip AND q.dst_port = r.server_port AND q.transport = r.transport
    AND q.id = r.id AND q.qname_key = r.qname_key AND q.qtype = r.qtype
    AND r.response_ts >= q.match_from
ASOF LEFT JOIN
(
    SELECT host, src_ip AS client_ip, dst_ip AS server_ip, qname_key, qtype, ts AS tcp_ts
    FROM dns_messages
    WHERE qr = 0 AND transport = 'tcp'
) AS t
ON q.host = t.host AND q.src_ip = t.client_ip AND q.dst_ip = t.server_ip
    AND q.qname_key = t.qname_key AND q.qtype = t.qtype
    AND t.tcp_ts >= r.response_ts
LEFT JOIN
(
    SELECT host, max(ts) AS capture_end FROM dns_messages GROUP BY host
) AS e
ON q.host = e.host;
