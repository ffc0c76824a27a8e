-- Raw tables: one row per event, idempotent on event_id through the event_ids ledger
-- (see sinks/README.md, "Idempotency"). Text that may hold personal data has a column
-- TTL (llmpulse db migrate --text-days N changes it); rows have a longer row TTL.

CREATE TABLE IF NOT EXISTS calls
(
    event_id               UUID,
    call_id                String,
    occurred_at            DateTime64(6, 'UTC'),
    processed_at           DateTime64(6, 'UTC'),
    inserted_at            DateTime64(6, 'UTC') DEFAULT now64(6),
    app                    LowCardinality(String),
    environment            LowCardinality(String),
    prompt_id              LowCardinality(String),
    prompt_version         LowCardinality(String),
    model                  LowCardinality(String),
    response_model         LowCardinality(String),
    provider               LowCardinality(String),
    operation              LowCardinality(String),
    trace_id               String,
    session_id             String,
    user_id                String,
    prompt_messages        String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    template_variables     Map(String, String) TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    response_text          String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    error_message          String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    retrieved_context_ids  Array(String),
    temperature            Nullable(Float32),
    max_tokens             Nullable(UInt32),
    expects_json           Bool,
    streamed               Bool,
    complete               Bool,
    incomplete_reason      LowCardinality(String),
    latency_ms             Nullable(Float32),
    time_to_first_token_ms Nullable(Float32),
    input_tokens           UInt32,
    output_tokens          UInt32,
    cached_input_tokens    UInt32,
    cost_usd               Nullable(Float64),
    finish_reason          LowCardinality(String),
    error_type             LowCardinality(String),
    quality                Nullable(Float32),
    toxicity               Nullable(Float32),
    relevance              Nullable(Float32),
    groundedness           Nullable(Float32),
    refusal                Nullable(Float32),
    custom_scores          Map(LowCardinality(String), Float64),
    scores_unavailable     Array(LowCardinality(String)),
    scorer_versions        Map(LowCardinality(String), String),
    scorer_set_version     LowCardinality(String),
    policy_version         LowCardinality(String),
    guardrail_rules        Array(LowCardinality(String)),
    guardrail_severity     Enum8('none' = 0, 'info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    guardrail_flagged      Bool,
    guardrail_blocked      Bool,
    guardrail_redacted     Bool,
    attributes             Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (app, environment, prompt_id, prompt_version, model, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS feedback
(
    event_id        UUID,
    call_id         String,
    occurred_at     DateTime64(6, 'UTC'),
    inserted_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    app             LowCardinality(String),
    environment     LowCardinality(String),
    prompt_id       LowCardinality(String),
    prompt_version  LowCardinality(String),
    model           LowCardinality(String),
    attributed      Bool,
    thumbs          Enum8('none' = 0, 'up' = 1, 'down' = 2),
    rating          Nullable(UInt8),
    label           LowCardinality(String),
    correction      String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    comment         String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    source          LowCardinality(String),
    author_id       String,
    user_id         String,
    session_id      String,
    attributes      Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (app, environment, prompt_id, prompt_version, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS guardrail_verdicts
(
    event_id        UUID,
    call_id         String,
    occurred_at     DateTime64(6, 'UTC'),
    inserted_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    app             LowCardinality(String),
    environment     LowCardinality(String),
    prompt_id       LowCardinality(String),
    prompt_version  LowCardinality(String),
    model           LowCardinality(String),
    rule_id         LowCardinality(String),
    rule_kind       LowCardinality(String),
    applies_to      Enum8('prompt' = 1, 'response' = 2, 'context' = 3),
    severity        Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    action          Enum8('flag' = 1, 'block' = 2, 'redact' = 3),
    policy_version  LowCardinality(String),
    span_start      Nullable(UInt32),
    span_end        Nullable(UInt32),
    match_preview   String,
    message         String,
    attributes      Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (app, environment, rule_id, prompt_id, prompt_version, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS drift_results
(
    event_id           UUID,
    occurred_at        DateTime64(6, 'UTC'),
    inserted_at        DateTime64(6, 'UTC') DEFAULT now64(6),
    app                LowCardinality(String),
    environment        LowCardinality(String),
    prompt_id          LowCardinality(String),
    prompt_version     LowCardinality(String),
    model              LowCardinality(String),
    window_start       DateTime64(6, 'UTC'),
    window_end         DateTime64(6, 'UTC'),
    reference_start    DateTime64(6, 'UTC'),
    reference_end      DateTime64(6, 'UTC'),
    window_size        UInt64,
    reference_size     UInt64,
    share_drifted      Float64,
    drifted            Bool,
    feature_names      Array(LowCardinality(String)),
    feature_tests      Array(LowCardinality(String)),
    feature_statistics Array(Float64),
    feature_p_values   Array(Nullable(Float64)),
    feature_thresholds Array(Float64),
    feature_drifted    Array(Bool),
    report_uri         String,
    attributes         Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(window_end)
ORDER BY (app, environment, prompt_id, prompt_version, window_end)
TTL toDateTime(window_end) + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS alerts
(
    event_id        UUID,
    occurred_at     DateTime64(6, 'UTC'),
    inserted_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    app             LowCardinality(String),
    environment     LowCardinality(String),
    rule            LowCardinality(String),
    status          Enum8('firing' = 1, 'resolved' = 2),
    severity        Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    dedup_key       String,
    summary         String,
    prompt_id       LowCardinality(String),
    prompt_version  LowCardinality(String),
    model           LowCardinality(String),
    started_at      Nullable(DateTime64(6, 'UTC')),
    value           Nullable(Float64),
    threshold       Nullable(Float64),
    link            String,
    attributes      Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (app, environment, dedup_key, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 400 DAY;

CREATE TABLE IF NOT EXISTS dead_letters
(
    event_id          UUID,
    occurred_at       DateTime64(6, 'UTC'),
    inserted_at       DateTime64(6, 'UTC') DEFAULT now64(6),
    reason            LowCardinality(String),
    detail            String,
    error_field       String,
    stage             LowCardinality(String),
    source_topic      LowCardinality(String),
    source_partition  Nullable(Int32),
    source_offset     Nullable(Int64),
    batch_index       Nullable(Int64),
    payload           String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    payload_truncated Bool
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (stage, reason, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 30 DAY;

-- The idempotency ledger: every stored event_id, sorted by it, filled by the views below
-- in the same INSERT as the raw row. The writer drops events whose id is already here.
-- Its TTL must outlive the longest topic retention (30 days): a redelivery can only come
-- from a record Kafka still holds.
CREATE TABLE IF NOT EXISTS event_ids
(
    event_id     UUID,
    source       LowCardinality(String),
    inserted_at  DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(inserted_at)
ORDER BY event_id
TTL inserted_at + INTERVAL 35 DAY
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_event_ids_mv TO event_ids AS
    SELECT event_id, 'calls' AS source FROM calls;
CREATE MATERIALIZED VIEW IF NOT EXISTS feedback_event_ids_mv TO event_ids AS
    SELECT event_id, 'feedback' AS source FROM feedback;
CREATE MATERIALIZED VIEW IF NOT EXISTS guardrail_verdicts_event_ids_mv TO event_ids AS
    SELECT event_id, 'guardrail_verdicts' AS source FROM guardrail_verdicts;
CREATE MATERIALIZED VIEW IF NOT EXISTS drift_results_event_ids_mv TO event_ids AS
    SELECT event_id, 'drift_results' AS source FROM drift_results;
CREATE MATERIALIZED VIEW IF NOT EXISTS alerts_event_ids_mv TO event_ids AS
    SELECT event_id, 'alerts' AS source FROM alerts;
CREATE MATERIALIZED VIEW IF NOT EXISTS dead_letters_event_ids_mv TO event_ids AS
    SELECT event_id, 'dead_letters' AS source FROM dead_letters;

-- Find a call by id (drill-down, and attributing feedback to its prompt version).
CREATE TABLE IF NOT EXISTS call_index
(
    call_id         String,
    occurred_at     DateTime64(6, 'UTC'),
    app             LowCardinality(String),
    environment     LowCardinality(String),
    prompt_id       LowCardinality(String),
    prompt_version  LowCardinality(String),
    model           LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY call_id
TTL toDateTime(occurred_at) + INTERVAL 90 DAY
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS call_index_mv TO call_index AS
    SELECT call_id, occurred_at, app, environment, prompt_id, prompt_version, model FROM calls;
