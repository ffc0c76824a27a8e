-- Evaluation runs and their per-call results, written by `llmpulse replay` (re-running a
-- time range through a new scorer, guardrail policy or prompt version). A run's row is
-- updated as it progresses: this is the one place an update-plus-dedup table is used,
-- because the table stays tiny (one row per run) and is always read with FINAL.

CREATE TABLE IF NOT EXISTS eval_runs
(
    run_id          String,
    name            String,
    kind            LowCardinality(String),
    status          LowCardinality(String),
    created_at      DateTime64(6, 'UTC'),
    updated_at      DateTime64(6, 'UTC'),
    source_topic    String,
    range_start     Nullable(DateTime64(6, 'UTC')),
    range_end       Nullable(DateTime64(6, 'UTC')),
    baseline        String,
    candidate       String,
    config          String,
    calls           UInt64,
    summary         String
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY run_id;

-- One row per (run, variant, call); a re-run of the same run replaces its rows.
CREATE TABLE IF NOT EXISTS eval_results
(
    run_id          String,
    variant         LowCardinality(String),
    call_id         String,
    occurred_at     DateTime64(6, 'UTC'),
    inserted_at     DateTime64(6, 'UTC') DEFAULT now64(6),
    app             LowCardinality(String),
    prompt_id       LowCardinality(String),
    prompt_version  LowCardinality(String),
    model           LowCardinality(String),
    response_text   String TTL toDateTime(inserted_at) + INTERVAL 30 DAY,
    latency_ms      Nullable(Float32),
    input_tokens    UInt32,
    output_tokens   UInt32,
    cost_usd        Nullable(Float64),
    error_type      LowCardinality(String),
    quality         Nullable(Float32),
    toxicity        Nullable(Float32),
    relevance       Nullable(Float32),
    groundedness    Nullable(Float32),
    refusal         Nullable(Float32),
    custom_scores   Map(LowCardinality(String), Float64),
    scorer_versions Map(LowCardinality(String), String),
    guardrail_rules Array(LowCardinality(String)),
    guardrail_blocked Bool
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(inserted_at)
ORDER BY (run_id, variant, call_id)
TTL toDateTime(inserted_at) + INTERVAL 180 DAY;
