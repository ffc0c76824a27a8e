-- Contracts v1.1 (#14): agents and tools. Forward-only: columns added with defaults (old
-- rows read '' and 0), enums extended (old values keep their numbers), new tables.
-- A trace is the LLM calls (calls) and the other steps (spans) sharing a trace_id.

ALTER TABLE calls
    ADD COLUMN IF NOT EXISTS span_id String AFTER trace_id,
    ADD COLUMN IF NOT EXISTS parent_span_id String AFTER span_id,
    ADD COLUMN IF NOT EXISTS tool_call_count UInt16 AFTER cached_input_tokens,
    ADD COLUMN IF NOT EXISTS tool_call_names Array(LowCardinality(String)) AFTER tool_call_count,
    ADD COLUMN IF NOT EXISTS reasoning_tokens UInt32 AFTER tool_call_names,
    ADD COLUMN IF NOT EXISTS cache_creation_input_tokens UInt32 AFTER reasoning_tokens;

-- The trace view finds a trace's calls by trace_id: a bloom filter skips the granules
-- without it (parts written before this migration are read whole).
ALTER TABLE calls ADD INDEX IF NOT EXISTS calls_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE guardrail_verdicts
    MODIFY COLUMN applies_to Enum8('prompt' = 1, 'response' = 2, 'context' = 3,
                                   'tool_arguments' = 4, 'tool_result' = 5),
    ADD COLUMN IF NOT EXISTS trace_id String AFTER call_id,
    ADD COLUMN IF NOT EXISTS span_id String AFTER trace_id;

-- One row per finished non-LLM step (SpanEvent): a tool execution, an agent step, a
-- retrieval. call_id is the span_id, so it is not repeated. Text that may hold personal
-- data (tool arguments, results, error messages) has the column TTL of the calls' text.
CREATE TABLE IF NOT EXISTS spans
(
    event_id             UUID,
    trace_id             String,
    span_id              String,
    parent_span_id       String,
    occurred_at          DateTime64(6, 'UTC'),
    started_at           DateTime64(6, 'UTC'),
    inserted_at          DateTime64(6, 'UTC') DEFAULT now64(6),
    app                  LowCardinality(String),
    environment          LowCardinality(String),
    name                 LowCardinality(String),
    operation            LowCardinality(String),
    tool_name            LowCardinality(String),
    tool_call_id         String,
    tool_arguments       String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    arguments_truncated  Bool,
    -- 1: a JSON object, or no arguments at all; judged at insert time, so it outlives the
    -- text's TTL. Cut arguments (arguments_truncated) are rarely valid: read both.
    arguments_valid_json UInt8 MATERIALIZED
        tool_arguments = '' OR (isValidJSON(tool_arguments) AND JSONType(tool_arguments) = 'Object'),
    status               Enum8('ok' = 1, 'error' = 2),
    error_type           LowCardinality(String),
    error_message        String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    result_preview       String TTL toDateTime(occurred_at) + INTERVAL 30 DAY,
    result_truncated     Bool,
    latency_ms           Float32,
    input_tokens         UInt32,
    output_tokens        UInt32,
    cost_usd             Nullable(Float64),
    session_id           String,
    user_id              String,
    model                LowCardinality(String),
    provider             LowCardinality(String),
    attributes           Map(String, String),
    INDEX spans_trace_id trace_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (app, environment, operation, tool_name, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 90 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS spans_event_ids_mv TO event_ids AS
    SELECT event_id, 'spans' AS source FROM spans;

-- Per minute and tool: executions, errors, arguments that were not a JSON object, cost and
-- latency t-digest states (read with quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms)).
CREATE TABLE IF NOT EXISTS tool_calls_1m
(
    minute             DateTime('UTC'),
    app                LowCardinality(String),
    environment        LowCardinality(String),
    tool_name          LowCardinality(String),
    calls              SimpleAggregateFunction(sum, UInt64),
    errors             SimpleAggregateFunction(sum, UInt64),
    invalid_arguments  SimpleAggregateFunction(sum, UInt64),
    cost_usd           SimpleAggregateFunction(sum, Float64),
    latency_ms         AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Float32)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (app, environment, tool_name, minute)
TTL minute + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS tool_calls_1m_mv TO tool_calls_1m AS
SELECT
    toStartOfMinute(occurred_at) AS minute,
    app, environment, tool_name,
    count() AS calls,
    countIf(status = 'error') AS errors,
    countIf(NOT arguments_truncated AND tool_arguments != ''
            AND NOT (isValidJSON(tool_arguments) AND JSONType(tool_arguments) = 'Object'))
        AS invalid_arguments,
    sum(ifNull(cost_usd, 0)) AS cost_usd,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency_ms
FROM spans
WHERE tool_name != ''
GROUP BY minute, app, environment, tool_name;
