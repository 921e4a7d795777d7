-- search_domains: the resolv.conf search list (and ndots) of a capture host, where the user knows
-- it (`--search-domains`). The lookup views use it instead of inferring suffixes from traffic.
-- host '' gives the list for every host that has no row of its own. Lists replace each other by
-- updated_at; an empty domains array says "this host has no search list" (inference is off).
CREATE TABLE IF NOT EXISTS search_domains
(
    host       LowCardinality(String)  COMMENT 'capture host, or empty for all hosts without a row',
    domains    Array(String)           COMMENT 'search suffixes in resolv.conf order, lower case, no final dot',
    ndots      Nullable(UInt8)         COMMENT 'resolv.conf ndots; NULL: infer from traffic (default 1)',
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY host;
