-- The prompt registry (topic llm.prompt-versions): every published version of a template
-- and where each label points. Versions never change (the version is a hash of the
-- content); a republished version and a moved label collapse to the latest row per key.
-- Queries: the versions of a prompt (ORDER BY prompt_id, version), the version a label
-- names now (prompt_labels FINAL, or argMax(version, occurred_at)).

CREATE TABLE IF NOT EXISTS prompt_versions
(
    event_id        UUID,
    occurred_at     DateTime64(6, 'UTC'),
    prompt_id       String,
    version         String,
    messages        String,
    variables       Array(String),
    model           LowCardinality(String),
    model_settings  Map(String, String),
    metadata        Map(String, String),
    source          String
)
ENGINE = ReplacingMergeTree(occurred_at)
ORDER BY (prompt_id, version);

CREATE TABLE IF NOT EXISTS prompt_labels
(
    event_id     UUID,
    occurred_at  DateTime64(6, 'UTC'),
    prompt_id    String,
    label        String,
    version      String
)
ENGINE = ReplacingMergeTree(occurred_at)
ORDER BY (prompt_id, label);

CREATE MATERIALIZED VIEW IF NOT EXISTS prompt_versions_event_ids_mv TO event_ids AS
    SELECT event_id, 'prompt_versions' AS source FROM prompt_versions;
CREATE MATERIALIZED VIEW IF NOT EXISTS prompt_labels_event_ids_mv TO event_ids AS
    SELECT event_id, 'prompt_labels' AS source FROM prompt_labels;
