-- dnsloss_settings: tunables that the views read, so that users' own SQL over the views sees the
-- same numbers as the reports. Change one with `analyzer settings set NAME VALUE`.
CREATE TABLE IF NOT EXISTS dnsloss_settings
(
    name       String,
    value      Float64,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;
