-- dns_messages: one row per DNS message seen on the wire.
-- Written by the collector and by `analyzer ingest`; read by the views in queries/.
CREATE TABLE IF NOT EXISTS dns_messages
(
    host            LowCardinality(String)  COMMENT 'capture point (host name)',
    iface           LowCardinality(String)  COMMENT 'interface name or pcapng interface index',
    source          LowCardinality(String)  COMMENT 'capture file path or live interface',
    ts              DateTime64(9, 'UTC')    COMMENT 'capture timestamp',
    direction       LowCardinality(String)  COMMENT 'in, out, or empty when the capture does not tell',
    ip_version      UInt8,
    src_ip          IPv6                    COMMENT 'IPv4 as ::ffff:a.b.c.d',
    dst_ip          IPv6,
    src_port        UInt16,
    dst_port        UInt16,
    transport       LowCardinality(String)  COMMENT 'udp or tcp',
    id              UInt16                  COMMENT 'DNS transaction id',
    qr              UInt8                   COMMENT '0 query, 1 response',
    opcode          UInt8,
    aa              UInt8,
    tc              UInt8,
    rd              UInt8,
    ra              UInt8,
    ad              UInt8,
    cd              UInt8,
    rcode           UInt16                  COMMENT 'header rcode plus EDNS extended bits',
    qname           String                  COMMENT 'first question name as seen (0x20 case kept), RFC 1035 escaped, no final dot',
    qname_key       String MATERIALIZED lower(qname) COMMENT 'lower-cased qname for matching',
    qtype           UInt16,
    qclass          UInt16,
    qdcount         UInt16,
    ancount         UInt16,
    nscount         UInt16,
    arcount         UInt16,
    edns            UInt8                   COMMENT '1 when an OPT record is present',
    edns_udp_size   UInt16,
    edns_do         UInt8,
    edns_version    UInt8,
    edns_options    Array(UInt16)           COMMENT 'EDNS option codes present',
    size            UInt32                  COMMENT 'DNS message size in bytes',
    ip_fragmented   UInt8                   COMMENT '1 when reassembled from IP fragments',
    tcp_reassembled UInt8                   COMMENT '1 when the message spanned several TCP segments',
    truncated       UInt8                   COMMENT '1 when the capture cut the message short',
    malformed       LowCardinality(String)  COMMENT 'why decoding stopped early; empty when fully decoded'
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (host, ts);
