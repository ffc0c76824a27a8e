-- Per-minute rollups for the dashboards, filled by materialized views at insert time.
-- Counters are SimpleAggregateFunction(sum); latency quantiles are mergeable t-digest
-- states: read them with quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(latency_ms).
-- Because the writer never inserts an event twice, the views never count one twice.

CREATE TABLE IF NOT EXISTS calls_1m
(
    minute               DateTime('UTC'),
    app                  LowCardinality(String),
    environment          LowCardinality(String),
    prompt_id            LowCardinality(String),
    prompt_version       LowCardinality(String),
    model                LowCardinality(String),
    calls                SimpleAggregateFunction(sum, UInt64),
    errors               SimpleAggregateFunction(sum, UInt64),
    incomplete           SimpleAggregateFunction(sum, UInt64),
    refusals             SimpleAggregateFunction(sum, UInt64),
    toxicity_scored      SimpleAggregateFunction(sum, UInt64),
    toxic                SimpleAggregateFunction(sum, UInt64),
    toxicity_sum         SimpleAggregateFunction(sum, Float64),
    quality_scored       SimpleAggregateFunction(sum, UInt64),
    quality_sum          SimpleAggregateFunction(sum, Float64),
    relevance_scored     SimpleAggregateFunction(sum, UInt64),
    relevance_sum        SimpleAggregateFunction(sum, Float64),
    groundedness_scored  SimpleAggregateFunction(sum, UInt64),
    groundedness_sum     SimpleAggregateFunction(sum, Float64),
    guardrail_flagged    SimpleAggregateFunction(sum, UInt64),
    guardrail_blocked    SimpleAggregateFunction(sum, UInt64),
    input_tokens         SimpleAggregateFunction(sum, UInt64),
    output_tokens        SimpleAggregateFunction(sum, UInt64),
    cost_usd             SimpleAggregateFunction(sum, Float64),
    latency_ms           AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(Float32)),
    time_to_first_token_ms AggregateFunction(quantilesTDigest(0.5, 0.9, 0.95, 0.99), Nullable(Float32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (app, environment, prompt_id, prompt_version, model, minute)
TTL minute + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_1m_mv TO calls_1m AS
SELECT
    toStartOfMinute(occurred_at) AS minute,
    app, environment, prompt_id, prompt_version, model,
    count() AS calls,
    countIf(error_type != '') AS errors,
    countIf(NOT complete) AS incomplete,
    countIf(refusal >= 0.5 OR finish_reason = 'content_filter') AS refusals,
    count(toxicity) AS toxicity_scored,
    countIf(toxicity >= 0.5) AS toxic,
    sum(ifNull(toxicity, 0)) AS toxicity_sum,
    count(quality) AS quality_scored,
    sum(ifNull(quality, 0)) AS quality_sum,
    count(relevance) AS relevance_scored,
    sum(ifNull(relevance, 0)) AS relevance_sum,
    count(groundedness) AS groundedness_scored,
    sum(ifNull(groundedness, 0)) AS groundedness_sum,
    countIf(guardrail_flagged) AS guardrail_flagged,
    countIf(guardrail_blocked) AS guardrail_blocked,
    sum(toUInt64(input_tokens)) AS input_tokens,
    sum(toUInt64(output_tokens)) AS output_tokens,
    sum(ifNull(cost_usd, 0)) AS cost_usd,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(latency_ms) AS latency_ms,
    quantilesTDigestState(0.5, 0.9, 0.95, 0.99)(time_to_first_token_ms) AS time_to_first_token_ms
FROM calls
GROUP BY minute, app, environment, prompt_id, prompt_version, model;

CREATE TABLE IF NOT EXISTS feedback_1m
(
    minute          DateTime('UTC'),
    app             LowCardinality(String),
    environment     LowCardinality(String),
    prompt_id       LowCardinality(String),
    prompt_version  LowCardinality(String),
    model           LowCardinality(String),
    feedback        SimpleAggregateFunction(sum, UInt64),
    thumbs_up       SimpleAggregateFunction(sum, UInt64),
    thumbs_down     SimpleAggregateFunction(sum, UInt64),
    ratings         SimpleAggregateFunction(sum, UInt64),
    rating_sum      SimpleAggregateFunction(sum, UInt64),
    corrections     SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (app, environment, prompt_id, prompt_version, model, minute)
TTL minute + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS feedback_1m_mv TO feedback_1m AS
SELECT
    toStartOfMinute(occurred_at) AS minute,
    app, environment, prompt_id, prompt_version, model,
    count() AS feedback,
    countIf(thumbs = 'up') AS thumbs_up,
    countIf(thumbs = 'down') AS thumbs_down,
    count(rating) AS ratings,
    sum(toUInt64(ifNull(rating, 0))) AS rating_sum,
    countIf(correction != '') AS corrections
FROM feedback
GROUP BY minute, app, environment, prompt_id, prompt_version, model;

CREATE TABLE IF NOT EXISTS guardrail_verdicts_1m
(
    minute          DateTime('UTC'),
    app             LowCardinality(String),
    environment     LowCardinality(String),
    prompt_id       LowCardinality(String),
    prompt_version  LowCardinality(String),
    rule_id         LowCardinality(String),
    severity        Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    action          Enum8('flag' = 1, 'block' = 2, 'redact' = 3),
    verdicts        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (app, environment, rule_id, prompt_id, prompt_version, severity, action, minute)
TTL minute + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS guardrail_verdicts_1m_mv TO guardrail_verdicts_1m AS
SELECT
    toStartOfMinute(occurred_at) AS minute,
    app, environment, prompt_id, prompt_version, rule_id, severity, action,
    count() AS verdicts
FROM guardrail_verdicts
GROUP BY minute, app, environment, prompt_id, prompt_version, rule_id, severity, action;
