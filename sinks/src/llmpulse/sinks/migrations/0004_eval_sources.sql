-- Where each evaluated call came from (written by `llmpulse replay`): the Kafka topic,
-- partition and offset of the record that held the call's prompt (or its response when
-- the prompt was not in the range), so a result can be traced back to its source record.

ALTER TABLE eval_results
    ADD COLUMN IF NOT EXISTS source_topic LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS source_partition Int32 DEFAULT -1,
    ADD COLUMN IF NOT EXISTS source_offset Int64 DEFAULT -1;
