-- The ClickHouse model of the pipeline. Applied at every start; every statement is
-- idempotent (IF NOT EXISTS). Statements are separated by lines holding only ';'.
--
-- Raw tables hold each accepted event exactly once: the sink drops an event whose
-- id is already stored before inserting, so count() and the rollups agree.
-- Rollups are materialized views into SummingMergeTree tables: always query them
-- with sum(...) GROUP BY, since rows of the same key merge in the background.

CREATE TABLE IF NOT EXISTS clickstream_events
(
    event_id        String,
    customer_id     String,
    event_time      DateTime64(3, 'UTC'),
    type            LowCardinality(String),
    session_id      Nullable(String),
    channel         LowCardinality(String),
    device          LowCardinality(Nullable(String)),
    page_url        Nullable(String),
    referrer        Nullable(String),
    utm_source      Nullable(String),
    utm_medium      Nullable(String),
    utm_campaign    Nullable(String),
    product_id      Nullable(String),
    category_id     Nullable(String),
    brand           Nullable(String),
    price           Nullable(Float64),
    currency        LowCardinality(Nullable(String)),
    quantity        Nullable(UInt32),
    query           Nullable(String),
    results         Nullable(UInt32),
    cart_value      Nullable(Float64),
    items           Nullable(UInt32),
    schema_version  UInt8,
    source_partition UInt16,
    source_offset   UInt64,
    ingested_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (customer_id, event_time, event_id)
;
CREATE TABLE IF NOT EXISTS order_events
(
    event_id        String,
    customer_id     String,
    event_time      DateTime64(3, 'UTC'),
    type            LowCardinality(String),
    order_id        String,
    currency        LowCardinality(String),
    amount          Nullable(Float64),
    freight         Nullable(Float64),
    channel         LowCardinality(Nullable(String)),
    session_id      Nullable(String),
    payment_type    LowCardinality(Nullable(String)),
    installments    Nullable(UInt16),
    reason          Nullable(String),
    item_product_ids  Array(String),
    item_category_ids Array(Nullable(String)),
    item_quantities   Array(UInt32),
    item_unit_prices  Array(Nullable(Float64)),
    schema_version  UInt8,
    source_partition UInt16,
    source_offset   UInt64,
    ingested_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (customer_id, event_time, event_id)
;
CREATE TABLE IF NOT EXISTS chat_messages
(
    event_id        String,
    customer_id     String,
    event_time      DateTime64(3, 'UTC'),
    type            LowCardinality(String),
    conversation_id String,
    sender_role     LowCardinality(String),
    channel         LowCardinality(String),
    text            String,
    language        LowCardinality(Nullable(String)),
    rating          Nullable(UInt8),
    in_reply_to     Nullable(String),
    schema_version  UInt8,
    source_partition UInt16,
    source_offset   UInt64,
    ingested_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (customer_id, event_time, event_id)
;
CREATE TABLE IF NOT EXISTS consent_events
(
    event_id        String,
    customer_id     String,
    event_time      DateTime64(3, 'UTC'),
    type            LowCardinality(String),
    channel         LowCardinality(String),
    status          LowCardinality(String),
    purpose         LowCardinality(String),
    source          Nullable(String),
    schema_version  UInt8,
    source_partition UInt16,
    source_offset   UInt64,
    ingested_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (customer_id, event_time, event_id)
;
CREATE TABLE IF NOT EXISTS dead_letters
(
    dead_letter_id  String,
    source_topic    LowCardinality(String),
    source_partition UInt16,
    source_offset   UInt64,
    reason          LowCardinality(String),
    detail          String,
    key             Nullable(String),
    original        String,
    received_at     DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (received_at, dead_letter_id)
;
-- Rollup: events per minute (event time), per topic and type.
CREATE TABLE IF NOT EXISTS events_per_minute
(
    minute  DateTime('UTC'),
    topic   LowCardinality(String),
    type    LowCardinality(String),
    events  UInt64
)
ENGINE = SummingMergeTree
ORDER BY (minute, topic, type)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_clickstream_mv TO events_per_minute AS
SELECT toStartOfMinute(event_time) AS minute, 'clickstream' AS topic, type, count() AS events
FROM clickstream_events GROUP BY minute, type
;
CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_orders_mv TO events_per_minute AS
SELECT toStartOfMinute(event_time) AS minute, 'orders' AS topic, type, count() AS events
FROM order_events GROUP BY minute, type
;
CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_chat_mv TO events_per_minute AS
SELECT toStartOfMinute(event_time) AS minute, 'chat' AS topic, type, count() AS events
FROM chat_messages GROUP BY minute, type
;
CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_consent_mv TO events_per_minute AS
SELECT toStartOfMinute(event_time) AS minute, 'consent' AS topic, type, count() AS events
FROM consent_events GROUP BY minute, type
;
-- Rollup: orders and revenue per minute (event time) and currency. Revenue counts
-- placed orders whose amount is known; refunds are reported separately.
CREATE TABLE IF NOT EXISTS orders_per_minute
(
    minute            DateTime('UTC'),
    currency          LowCardinality(String),
    orders_placed     UInt64,
    orders_priced     UInt64,
    revenue           Float64,
    orders_cancelled  UInt64,
    refunds           UInt64,
    refunded_amount   Float64
)
ENGINE = SummingMergeTree
ORDER BY (minute, currency)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS orders_per_minute_mv TO orders_per_minute AS
SELECT
    toStartOfMinute(event_time) AS minute,
    currency,
    countIf(type = 'order_placed') AS orders_placed,
    countIf(type = 'order_placed' AND amount IS NOT NULL) AS orders_priced,
    sumIf(ifNull(amount, 0), type = 'order_placed') AS revenue,
    countIf(type = 'order_cancelled') AS orders_cancelled,
    countIf(type = 'order_refunded') AS refunds,
    sumIf(ifNull(amount, 0), type = 'order_refunded') AS refunded_amount
FROM order_events
GROUP BY minute, currency
;
-- Dead letters per minute (arrival time) and reason.
CREATE TABLE IF NOT EXISTS dead_letters_per_minute
(
    minute        DateTime('UTC'),
    source_topic  LowCardinality(String),
    reason        LowCardinality(String),
    dead_letters  UInt64
)
ENGINE = SummingMergeTree
ORDER BY (minute, source_topic, reason)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS dead_letters_per_minute_mv TO dead_letters_per_minute AS
SELECT toStartOfMinute(received_at) AS minute, source_topic, reason, count() AS dead_letters
FROM dead_letters GROUP BY minute, source_topic, reason
;
-- Customer profiles: every emitted version (history), and the latest per customer.
-- A re-emitted version (after a restart) has the same key and collapses on merge.
-- Query the latest with FINAL:  SELECT * FROM customer_profiles FINAL WHERE customer_id = '42'
CREATE TABLE IF NOT EXISTS customer_profile_history
(
    customer_id   String,
    as_of         DateTime64(3, 'UTC'),
    events_total  UInt64,
    stage         LowCardinality(String),
    stage_since   Nullable(DateTime64(3, 'UTC')),
    segments      Array(LowCardinality(String)),
    last_seen     Nullable(DateTime64(3, 'UTC')),
    orders_total  UInt32,
    revenue_total Float64,
    cart_value    Float64,
    features      String,
    emitted_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(as_of)
ORDER BY (customer_id, events_total)
;
-- Same columns as the history; one partition, so every version of a customer collapses to the latest.
CREATE TABLE IF NOT EXISTS customer_profiles AS customer_profile_history
ENGINE = ReplacingMergeTree(events_total)
PARTITION BY tuple()
ORDER BY customer_id
;
CREATE MATERIALIZED VIEW IF NOT EXISTS customer_profiles_mv TO customer_profiles AS
SELECT * FROM customer_profile_history
;
-- Valid events that arrived after the allowed lateness (not counted in any window).
CREATE TABLE IF NOT EXISTS late_events
(
    event_id           String,
    customer_id        String,
    source_topic       LowCardinality(String),
    event_time         DateTime64(3, 'UTC'),
    newest_event_time  DateTime64(3, 'UTC'),
    allowed_lateness_s Float64,
    processor          LowCardinality(String),
    received_at        DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (customer_id, event_id, processor)
