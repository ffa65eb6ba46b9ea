-- The ClickHouse model of the pipeline. Applied at every start; every statement is
-- idempotent (IF NOT EXISTS; plain views computed at query time use OR REPLACE, so a changed
-- definition reaches an existing database). Statements are separated by lines holding only ';'.
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
-- A dead letter carries at most the first 256 KiB of its original (a Kafka record must stay under
-- 1 MB), with the length and SHA-256 of the whole (a table made before they existed gains them:
-- its rows were whole, so the defaults compute them from the original).
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS original_length UInt64 DEFAULT length(original) AFTER received_at
;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS original_sha256 String DEFAULT lower(hex(SHA256(original)))
    AFTER original_length
;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS truncated Bool DEFAULT false AFTER original_sha256
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
    emitted_at    DateTime64(3, 'UTC'),
    -- Set on a retired profile (an anonymous visitor or aliased customer merged into this customer).
    merged_into   Nullable(String),
    -- Orders a customer's versions: events_total and as_of never decrease from one version to the
    -- next and one of them grows (a new event, or a stage timer moving as_of on), so their sum grows.
    profile_version UInt64 MATERIALIZED toUInt64(toUnixTimestamp64Milli(as_of)) + events_total
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(as_of)
ORDER BY (customer_id, events_total, as_of)
;
-- Same columns as the history; one partition, so every version of a customer collapses to the latest.
CREATE TABLE IF NOT EXISTS customer_profiles AS customer_profile_history
ENGINE = ReplacingMergeTree(profile_version)
PARTITION BY tuple()
ORDER BY customer_id
;
CREATE MATERIALIZED VIEW IF NOT EXISTS customer_profiles_mv TO customer_profiles AS
SELECT * FROM customer_profile_history
;
-- Identity resolution's audit: every link of an identifier to a customer, every merge of one profile
-- into another (the retired profile's row in customer_profiles says merged_into), every refused link.
-- A record produced again after a restart has the same record_id and collapses on merge.
CREATE TABLE IF NOT EXISTS identity_merges
(
    record_id   String,
    action      LowCardinality(String),
    reason      LowCardinality(String),
    from_kind   LowCardinality(String),
    from_id     String,
    into_id     String,
    event_id    String,
    event_time  DateTime64(3, 'UTC'),
    emitted_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (into_id, record_id)
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
    received_at        DateTime64(3, 'UTC'),
    reason             LowCardinality(String),
    original           String
)
ENGINE = ReplacingMergeTree
ORDER BY (customer_id, event_id, processor)
;
-- Why it was set aside, and the event's original bytes (a table made before they existed gains them).
ALTER TABLE late_events ADD COLUMN IF NOT EXISTS reason LowCardinality(String) AFTER received_at
;
ALTER TABLE late_events ADD COLUMN IF NOT EXISTS original String AFTER reason
;
-- Scores: the latest per customer and model (query with FINAL); a re-emitted score has the same
-- scored_at and collapses.
CREATE TABLE IF NOT EXISTS scores
(
    score_id      String,
    customer_id   String,
    model         LowCardinality(String),
    model_version UInt64,
    scored_at     DateTime64(3, 'UTC'),
    probability   Float64,
    band          LowCardinality(String),
    cold_start    Bool,
    top_features  Map(String, Float64),
    emitted_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(scored_at)
ORDER BY (customer_id, model)
;
-- Prequential metrics per model, every N labels; one row per (model, labels).
CREATE TABLE IF NOT EXISTS model_metrics
(
    model         LowCardinality(String),
    model_version UInt64,
    labels        UInt64,
    positives     UInt64,
    roc_auc       Nullable(Float64),
    log_loss      Nullable(Float64),
    brier         Nullable(Float64),
    as_of         DateTime64(3, 'UTC'),
    emitted_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (model, labels)
;
-- Drift of a model's error (ADWIN); one row per detection.
CREATE TABLE IF NOT EXISTS model_drift
(
    drift_id      String,
    model         LowCardinality(String),
    model_version UInt64,
    labels        UInt64,
    detected_at   DateTime64(3, 'UTC'),
    detector      LowCardinality(String),
    error_before  Float64,
    error_after   Float64,
    window        UInt64,
    emitted_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (model, labels, drift_id)
;
-- ===================================================================================
-- Reporting rollups. Every one is fed by materialized views on the raw tables, which
-- hold each event once (the sink skips stored ids), so a redelivery changes nothing.
-- Query the *_state tables through the views below them (they merge the states).
-- ===================================================================================
-- Chat sentiment of customer messages, scored by the sink (processors/sentiment.py; -1 negative
-- .. 1 positive; NULL for agent and bot messages).
ALTER TABLE chat_messages ADD COLUMN IF NOT EXISTS sentiment Nullable(Float32) AFTER in_reply_to
;
-- A hash of the event's record bytes (0: stored before it existed): the sink tells a redelivered copy
-- (same hash: skipped) from a different event reusing a stored id (a conflicting_duplicate dead letter).
ALTER TABLE clickstream_events ADD COLUMN IF NOT EXISTS content_hash UInt64 DEFAULT 0 AFTER source_offset
;
ALTER TABLE order_events ADD COLUMN IF NOT EXISTS content_hash UInt64 DEFAULT 0 AFTER source_offset
;
ALTER TABLE chat_messages ADD COLUMN IF NOT EXISTS content_hash UInt64 DEFAULT 0 AFTER source_offset
;
ALTER TABLE consent_events ADD COLUMN IF NOT EXISTS content_hash UInt64 DEFAULT 0 AFTER source_offset
;
-- The event's anonymous_id as it arrived (NULL: none): an anonymous event is stored under it as customer_id,
-- so customer_id = anonymous_id marks one that arrived anonymous (the identified share: sinks/identity_report.py).
ALTER TABLE clickstream_events ADD COLUMN IF NOT EXISTS anonymous_id Nullable(String) AFTER customer_id
;
ALTER TABLE order_events ADD COLUMN IF NOT EXISTS anonymous_id Nullable(String) AFTER customer_id
;
ALTER TABLE chat_messages ADD COLUMN IF NOT EXISTS anonymous_id Nullable(String) AFTER customer_id
;
ALTER TABLE consent_events ADD COLUMN IF NOT EXISTS anonymous_id Nullable(String) AFTER customer_id
;
-- The customer's IANA time zone when the device or the preference centre reports it (quiet hours use it).
ALTER TABLE clickstream_events ADD COLUMN IF NOT EXISTS time_zone LowCardinality(Nullable(String)) AFTER utm_campaign
;
ALTER TABLE consent_events ADD COLUMN IF NOT EXISTS time_zone LowCardinality(Nullable(String)) AFTER source
;
-- Visitors, sessions and buyers per minute (event time): distinct counts kept as states.
CREATE TABLE IF NOT EXISTS activity_per_minute_state
(
    minute    DateTime('UTC'),
    visitors  AggregateFunction(uniqExact, String),
    sessions  AggregateFunction(uniqExact, Nullable(String)),
    buyers    AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY minute
;
CREATE MATERIALIZED VIEW IF NOT EXISTS activity_per_minute_clickstream_mv TO activity_per_minute_state AS
SELECT toStartOfMinute(event_time) AS minute, uniqExactState(customer_id) AS visitors,
       uniqExactState(session_id) AS sessions
FROM clickstream_events GROUP BY minute
;
CREATE MATERIALIZED VIEW IF NOT EXISTS activity_per_minute_orders_mv TO activity_per_minute_state AS
SELECT toStartOfMinute(event_time) AS minute, uniqExactState(customer_id) AS buyers
FROM order_events WHERE type = 'order_placed' GROUP BY minute
;
-- KPIs per minute: visitors (distinct customers with clickstream), sessions (distinct
-- session ids), buyers (distinct customers placing an order), orders and revenue (all
-- currencies: see revenue_per_minute for money), conversion = buyers / visitors.
CREATE VIEW IF NOT EXISTS kpis_per_minute AS
SELECT minute, visitors, sessions, buyers, orders,
       if(visitors > 0, buyers / visitors, NULL) AS conversion
FROM
(
    SELECT minute, uniqExactMerge(visitors) AS visitors, uniqExactMerge(sessions) AS sessions,
           uniqExactMerge(buyers) AS buyers
    FROM activity_per_minute_state GROUP BY minute
) AS a
LEFT JOIN
(
    SELECT minute, sum(orders_placed) AS orders FROM orders_per_minute GROUP BY minute
) AS o USING minute
ORDER BY minute
;
-- Money per minute and currency: orders, revenue (priced placed orders), average order value.
CREATE VIEW IF NOT EXISTS revenue_per_minute AS
SELECT minute, currency, orders, revenue, if(priced > 0, revenue / priced, NULL) AS average_order_value, refunded
FROM
(
    SELECT minute, currency, sum(orders_placed) AS orders, sum(orders_priced) AS priced,
           sum(orders_per_minute.revenue) AS revenue, sum(refunded_amount) AS refunded
    FROM orders_per_minute GROUP BY minute, currency
)
WHERE orders > 0 OR refunded != 0
ORDER BY minute, currency
;
-- The funnel per day and channel: distinct customers and events at each step.
-- Steps: view (page_view), product_view, cart (add_to_cart), checkout (checkout_started), order (order_placed).
CREATE TABLE IF NOT EXISTS funnel_daily_state
(
    day        Date,
    channel    LowCardinality(String),
    step       LowCardinality(String),
    customers  AggregateFunction(uniqExact, String),
    events     SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (day, channel, step)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS funnel_daily_clickstream_mv TO funnel_daily_state AS
SELECT toDate(event_time) AS day, channel,
       multiIf(type = 'page_view', 'view', type = 'add_to_cart', 'cart', type = 'checkout_started', 'checkout',
               type) AS step,
       uniqExactState(customer_id) AS customers, toUInt64(count()) AS events
FROM clickstream_events
WHERE type IN ('page_view', 'product_view', 'add_to_cart', 'checkout_started')
GROUP BY day, channel, step
;
CREATE MATERIALIZED VIEW IF NOT EXISTS funnel_daily_orders_mv TO funnel_daily_state AS
SELECT toDate(event_time) AS day, ifNull(channel, 'unknown') AS channel, 'order' AS step,
       uniqExactState(customer_id) AS customers, toUInt64(count()) AS events
FROM order_events WHERE type = 'order_placed' GROUP BY day, channel
;
CREATE VIEW IF NOT EXISTS funnel_per_day AS
SELECT day, channel,
       uniqExactMergeIf(customers, step = 'view') AS viewers,
       uniqExactMergeIf(customers, step = 'product_view') AS product_viewers,
       uniqExactMergeIf(customers, step = 'cart') AS carters,
       uniqExactMergeIf(customers, step = 'checkout') AS checkouts,
       uniqExactMergeIf(customers, step = 'order') AS buyers,
       sumIf(events, step = 'order') AS orders
FROM funnel_daily_state GROUP BY day, channel ORDER BY day, channel
;
-- Each customer's first order and the weeks (Monday-based) in which they ordered.
CREATE TABLE IF NOT EXISTS customer_orders_state
(
    customer_id  String,
    week         Date,
    first_order  AggregateFunction(min, DateTime64(3, 'UTC')),
    orders       SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (customer_id, week)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS customer_orders_mv TO customer_orders_state AS
SELECT customer_id, toMonday(event_time) AS week, minState(event_time) AS first_order, toUInt64(count()) AS orders
FROM order_events WHERE type = 'order_placed' GROUP BY customer_id, week
;
-- Cohort retention: customers by the week of their first order (cohort_week), and how
-- many of them order again N weeks later (weeks_since = 0 is the cohort itself).
CREATE VIEW IF NOT EXISTS cohort_retention AS
SELECT cohort_week, weeks_since, customers,
       max(customers) OVER (PARTITION BY cohort_week) AS cohort_size,
       customers / cohort_size AS retention
FROM
(
    SELECT toMonday(f.first_order) AS cohort_week,
           toUInt32(dateDiff('week', toMonday(f.first_order), w.week)) AS weeks_since,
           uniqExact(w.customer_id) AS customers
    FROM (SELECT customer_id, minMerge(first_order) AS first_order FROM customer_orders_state
          GROUP BY customer_id) AS f
    INNER JOIN (SELECT DISTINCT customer_id, week FROM customer_orders_state) AS w USING customer_id
    GROUP BY cohort_week, weeks_since
)
ORDER BY cohort_week, weeks_since
;
-- Revenue per day, item category and currency, from the items of placed orders
-- (quantity x unit price; items without a price count as units only).
CREATE TABLE IF NOT EXISTS revenue_by_category_daily
(
    day          Date,
    category_id  String,
    currency     LowCardinality(String),
    units        UInt64,
    revenue      Float64,
    order_lines  UInt64
)
ENGINE = SummingMergeTree
ORDER BY (day, category_id, currency)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS revenue_by_category_mv TO revenue_by_category_daily AS
SELECT toDate(event_time) AS day, ifNull(category, 'unknown') AS category_id, currency,
       toUInt64(sum(quantity)) AS units, sum(quantity * ifNull(unit_price, 0)) AS revenue,
       toUInt64(count()) AS order_lines
FROM order_events
ARRAY JOIN item_category_ids AS category, item_quantities AS quantity, item_unit_prices AS unit_price
WHERE type = 'order_placed'
GROUP BY day, category_id, currency
;
-- Each customer's first touch (earliest event by time then id among clickstream events and
-- placed orders), as the features processor defines acquisition; and their placed orders.
-- first_touch is (event_time, event_id, channel, source): its minimum is the first touch.
CREATE TABLE IF NOT EXISTS customer_value_state
(
    customer_id  String,
    currency     LowCardinality(String),
    first_touch  SimpleAggregateFunction(min, Tuple(DateTime64(3, 'UTC'), String, Nullable(String), Nullable(String))),
    orders       SimpleAggregateFunction(sum, UInt64),
    revenue      SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
ORDER BY (customer_id, currency)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS customer_value_clickstream_mv TO customer_value_state AS
SELECT customer_id, '' AS currency,
       min((event_time, event_id, CAST(channel, 'Nullable(String)'), utm_source)) AS first_touch
FROM clickstream_events GROUP BY customer_id
;
CREATE MATERIALIZED VIEW IF NOT EXISTS customer_value_orders_mv TO customer_value_state AS
SELECT customer_id, currency,
       min((event_time, event_id, CAST(channel, 'Nullable(String)'), CAST(NULL, 'Nullable(String)'))) AS first_touch,
       toUInt64(count()) AS orders, sum(ifNull(amount, 0)) AS revenue
FROM order_events WHERE type = 'order_placed' GROUP BY customer_id, currency
;
-- One row per customer: acquisition channel and source (first touch) and lifetime orders and
-- revenue per currency ('' currency rows carry customers without orders).
CREATE OR REPLACE VIEW customer_value AS
SELECT customer_id, acquisition_channel, acquisition_source, currency, orders, revenue
FROM
(
    SELECT customer_id, min(first_touch) AS touch,
           ifNull(touch.3, 'unknown') AS acquisition_channel, touch.4 AS acquisition_source
    FROM customer_value_state GROUP BY customer_id
) AS c
LEFT JOIN
(
    SELECT customer_id, currency, sum(orders) AS orders, sum(revenue) AS revenue
    FROM customer_value_state WHERE currency != '' GROUP BY customer_id, currency
) AS v USING customer_id
;
-- Which channels bring valuable customers: customers acquired, buyers among them, revenue.
CREATE VIEW IF NOT EXISTS value_by_acquisition_channel AS
SELECT acquisition_channel, currency,
       uniqExact(customer_id) AS customers, uniqExactIf(customer_id, customer_orders > 0) AS buyers,
       sum(customer_orders) AS orders, sum(customer_revenue) AS revenue,
       revenue / customers AS revenue_per_customer
FROM
(
    SELECT c.customer_id AS customer_id, c.acquisition_channel AS acquisition_channel, cur.currency AS currency,
           ifNull(v.orders, 0) AS customer_orders, ifNull(v.revenue, 0) AS customer_revenue
    FROM (SELECT DISTINCT customer_id, acquisition_channel FROM customer_value) AS c
    CROSS JOIN (SELECT DISTINCT currency FROM customer_value WHERE currency != '') AS cur
    LEFT JOIN (SELECT customer_id, currency, orders, revenue FROM customer_value WHERE currency != '') AS v
        ON v.customer_id = c.customer_id AND v.currency = cur.currency
)
GROUP BY acquisition_channel, currency ORDER BY acquisition_channel, currency
;
-- Customer sentiment per day and chat channel (customer messages only). Negative and positive
-- use the threshold of processors/sentiment.py (NEGATIVE_THRESHOLD = -0.05) and its mirror.
CREATE TABLE IF NOT EXISTS sentiment_daily
(
    day            Date,
    channel        LowCardinality(String),
    messages       UInt64,
    sentiment_sum  Float64,
    negative       UInt64,
    positive       UInt64
)
ENGINE = SummingMergeTree
ORDER BY (day, channel)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS sentiment_daily_mv TO sentiment_daily AS
SELECT toDate(event_time) AS day, channel, toUInt64(count()) AS messages, sum(ifNull(sentiment, 0)) AS sentiment_sum,
       toUInt64(countIf(sentiment < -0.05)) AS negative, toUInt64(countIf(sentiment > 0.05)) AS positive
FROM chat_messages WHERE sender_role = 'customer' GROUP BY day, channel
;
CREATE VIEW IF NOT EXISTS sentiment_per_day AS
SELECT day, channel, sum(sentiment_daily.messages) AS messages,
       sum(sentiment_daily.sentiment_sum) / messages AS average_sentiment,
       sum(sentiment_daily.negative) AS negative, sum(sentiment_daily.positive) AS positive
FROM sentiment_daily GROUP BY day, channel ORDER BY day, channel
;
-- Dead letters per reason and source topic, all time.
CREATE VIEW IF NOT EXISTS dead_letters_by_reason AS
SELECT reason, source_topic, sum(dead_letters_per_minute.dead_letters) AS dead_letters, min(minute) AS first_seen,
       max(minute) AS last_seen
FROM dead_letters_per_minute GROUP BY reason, source_topic ORDER BY dead_letters DESC
;
-- ===================================================================================
-- Triggers, guard decisions, messages and deliveries (written by the trigger, message and
-- delivery workers; stored by the sink). Each row's id is derived from what caused it, so a
-- record produced again after a restart collapses on merge: count distinct ids, or use FINAL.
-- ===================================================================================
CREATE TABLE IF NOT EXISTS triggers
(
    trigger_id      String,
    customer_id     String,
    trigger         LowCardinality(String),
    fired_at        DateTime64(3, 'UTC'),
    fired_by        LowCardinality(String),
    service         Bool,
    reason          String,
    source_event_id Nullable(String),
    products        Array(String),
    context         String,
    history         Nullable(String),
    emitted_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(fired_at)
ORDER BY (customer_id, trigger_id)
;
CREATE TABLE IF NOT EXISTS guard_decisions
(
    decision_id    String,
    trigger_id     String,
    customer_id    String,
    trigger        LowCardinality(String),
    guard          LowCardinality(String),
    outcome        LowCardinality(String),
    channel        LowCardinality(Nullable(String)),
    decided_at     DateTime64(3, 'UTC'),
    deferred_until Nullable(DateTime64(3, 'UTC')),
    detail         String,
    message_id     Nullable(String),
    emitted_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(decided_at)
ORDER BY (customer_id, trigger_id, decision_id)
;
CREATE TABLE IF NOT EXISTS messages
(
    message_id      String,
    trigger_id      String,
    customer_id     String,
    trigger         LowCardinality(Nullable(String)),
    channel         LowCardinality(String),
    template        String,
    locale          LowCardinality(String),
    subject         Nullable(String),
    title           Nullable(String),
    body            String,
    send_at         DateTime64(3, 'UTC'),
    deferred        Bool,
    service         Bool,
    recommendations Array(String),
    emitted_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(send_at)
ORDER BY (customer_id, message_id)
;
CREATE TABLE IF NOT EXISTS deliveries
(
    delivery_id  String,
    message_id   String,
    trigger_id   String,
    customer_id  String,
    trigger      LowCardinality(Nullable(String)),
    channel      LowCardinality(String),
    adapter      LowCardinality(String),
    status       LowCardinality(String),
    attempts     UInt16,
    delivered_at DateTime64(3, 'UTC'),
    detail       String,
    emitted_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(delivered_at)
ORDER BY (customer_id, delivery_id)
;
-- Triggers, guard outcomes and messages per day and type. Each state counts distinct derived ids
-- (uniqExact), so a record stored twice (a redelivered or re-emitted trigger, decision or message)
-- adds nothing: these rollups stay exact under redelivery although the tables they read keep
-- duplicate rows until they merge.
CREATE TABLE IF NOT EXISTS triggers_daily_state
(
    day        Date,
    trigger    LowCardinality(String),
    triggers   AggregateFunction(uniqExact, String),
    customers  AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (day, trigger)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS triggers_daily_mv TO triggers_daily_state AS
SELECT toDate(fired_at) AS day, trigger, uniqExactState(trigger_id) AS triggers,
       uniqExactState(customer_id) AS customers
FROM triggers GROUP BY day, trigger
;
CREATE TABLE IF NOT EXISTS guard_outcomes_daily_state
(
    day        Date,
    trigger    LowCardinality(String),
    guard      LowCardinality(String),
    outcome    LowCardinality(String),
    decisions  AggregateFunction(uniqExact, String),
    triggers   AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (day, trigger, guard, outcome)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS guard_outcomes_daily_mv TO guard_outcomes_daily_state AS
SELECT toDate(decided_at) AS day, trigger, guard, outcome, uniqExactState(decision_id) AS decisions,
       uniqExactState(trigger_id) AS triggers
FROM guard_decisions GROUP BY day, trigger, guard, outcome
;
CREATE TABLE IF NOT EXISTS messages_daily_state
(
    day        Date,
    trigger    LowCardinality(String),
    channel    LowCardinality(String),
    messages   AggregateFunction(uniqExact, String),
    customers  AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (day, trigger, channel)
;
CREATE MATERIALIZED VIEW IF NOT EXISTS messages_daily_mv TO messages_daily_state AS
SELECT toDate(send_at) AS day, ifNull(trigger, 'unknown') AS trigger, channel, uniqExactState(message_id) AS messages,
       uniqExactState(customer_id) AS customers
FROM messages GROUP BY day, trigger, channel
;
-- Triggers per day (of fired_at) and type: distinct triggers and customers, how many the holdout
-- guard held out (decided at fired_at, so the same day) and how many another guard stopped.
CREATE OR REPLACE VIEW triggers_per_day AS
SELECT day, trigger, triggered, customers, held_out
FROM
(
    SELECT day, trigger, uniqExactMerge(triggers) AS triggered, uniqExactMerge(customers) AS customers
    FROM triggers_daily_state GROUP BY day, trigger
) AS t
LEFT JOIN
(
    SELECT day, trigger, uniqExactMergeIf(triggers, guard = 'holdout' AND outcome = 'held_out') AS held_out
    FROM guard_outcomes_daily_state GROUP BY day, trigger
) AS g USING (day, trigger)
ORDER BY day, trigger
;
-- Guard outcomes per day (of decided_at), trigger type, guard and outcome.
CREATE OR REPLACE VIEW guard_outcomes_per_day AS
SELECT day, trigger, guard, outcome, uniqExactMerge(decisions) AS decisions, uniqExactMerge(triggers) AS triggers
FROM guard_outcomes_daily_state GROUP BY day, trigger, guard, outcome ORDER BY day, trigger, guard, outcome
;
-- Messages per day (of send_at), trigger type and channel.
CREATE OR REPLACE VIEW messages_per_day AS
SELECT day, trigger, channel, uniqExactMerge(messages) AS messages, uniqExactMerge(customers) AS customers
FROM messages_daily_state GROUP BY day, trigger, channel ORDER BY day, trigger, channel
;
-- One row per trigger: its arm (messaged, held_out by the holdout guard, or suppressed by another
-- guard) and the customer's orders placed within the attribution window of fired_at, the order the
-- trigger anchored on (a welcome's first order) excepted. The window starts at fired_at in every arm,
-- since the holdout is decided there: a message deferred by quiet hours is part of the treatment.
-- Its length in hours, {attribution_window_hours}, is the setting of that name (default 24), put in
-- by apply_schema (sinks/client.py).
-- Plain views (computed when queried, from the deduplicated raw rows), replaced at every start.
CREATE OR REPLACE VIEW trigger_attribution AS
WITH
    fired AS (SELECT trigger_id, any(customer_id) AS customer_id, any(trigger) AS trigger, any(fired_at) AS fired_at,
                     ifNull(any(source_event_id), '') AS source_event_id
              FROM triggers GROUP BY trigger_id),
    held AS (SELECT DISTINCT trigger_id FROM guard_decisions WHERE guard = 'holdout' AND outcome = 'held_out'),
    sent AS (SELECT trigger_id, min(send_at) AS send_at, any(channel) AS channel FROM messages GROUP BY trigger_id),
    arms AS (
        SELECT f.trigger_id AS trigger_id, f.customer_id AS customer_id, f.trigger AS trigger, f.fired_at AS fired_at,
               f.source_event_id AS source_event_id,
               multiIf(f.trigger_id IN (SELECT trigger_id FROM held), 'held_out',
                       s.trigger_id != '', 'messaged', 'suppressed') AS arm,
               if(arm = 'messaged', s.send_at, NULL) AS send_at,
               if(arm = 'messaged', s.channel, NULL) AS channel
        FROM fired AS f LEFT JOIN sent AS s ON s.trigger_id = f.trigger_id
    )
SELECT a.trigger_id AS trigger_id, any(a.customer_id) AS customer_id, any(a.trigger) AS trigger,
       any(a.fired_at) AS fired_at, any(a.arm) AS arm, any(a.channel) AS channel, any(a.send_at) AS send_at,
       countIf(o.event_id != '' AND o.event_id != a.source_event_id AND o.event_time >= a.fired_at
               AND o.event_time < a.fired_at + INTERVAL {attribution_window_hours} HOUR) AS orders_in_window,
       sumIf(ifNull(o.amount, 0), o.event_id != '' AND o.event_id != a.source_event_id AND o.event_time >= a.fired_at
             AND o.event_time < a.fired_at + INTERVAL {attribution_window_hours} HOUR) AS revenue_in_window,
       orders_in_window > 0 AS converted
FROM arms AS a
LEFT JOIN (SELECT customer_id, event_id, event_time, amount FROM order_events WHERE type = 'order_placed') AS o
    ON o.customer_id = a.customer_id
GROUP BY a.trigger_id
;
-- Conversion per day (of fired_at), trigger type and arm, and the uplift over the holdout. The holdout
-- guard runs first and picks customers by a hash, so "not held out" (messaged + suppressed) and
-- "held out" are comparable groups; messaged alone is not (the later guards choose who gets a message).
CREATE OR REPLACE VIEW trigger_conversion_daily AS
SELECT toDate(fired_at) AS day, trigger,
       count() AS triggered,
       countIf(arm = 'messaged') AS messaged,
       countIf(arm = 'held_out') AS held_out,
       countIf(arm = 'suppressed') AS suppressed,
       countIf(arm = 'messaged' AND converted) AS messaged_converted,
       countIf(arm != 'held_out' AND converted) AS treated_converted,
       countIf(arm = 'held_out' AND converted) AS held_out_converted,
       sum(revenue_in_window) AS revenue_in_window
FROM trigger_attribution
GROUP BY day, trigger
ORDER BY day, trigger
;
CREATE OR REPLACE VIEW trigger_conversion AS
SELECT trigger, triggered, messaged, held_out, suppressed, messaged_converted, treated_converted, held_out_converted,
       messaged_converted / nullIf(messaged, 0) AS messaged_conversion,
       treated_converted / nullIf(triggered - held_out, 0) AS treated_conversion,
       held_out_converted / nullIf(held_out, 0) AS held_out_conversion,
       treated_conversion - held_out_conversion AS uplift,
       sqrt(treated_conversion * (1 - treated_conversion) / (triggered - held_out)
            + held_out_conversion * (1 - held_out_conversion) / held_out) AS uplift_standard_error
FROM
(
    SELECT trigger, sum(triggered) AS triggered, sum(messaged) AS messaged, sum(held_out) AS held_out,
           sum(suppressed) AS suppressed, sum(messaged_converted) AS messaged_converted,
           sum(treated_converted) AS treated_converted, sum(held_out_converted) AS held_out_converted
    FROM trigger_conversion_daily GROUP BY trigger
)
ORDER BY triggered DESC, trigger
;
-- ===================================================================================
-- Score distributions. A customer's latest score moves between bands, and a materialized view
-- only sees inserted rows (it cannot take the customer out of the old band), so these are plain
-- views over the latest state: scores FINAL (and customer_profiles FINAL for the segments),
-- merged at query time. Exact and as fresh as the scores table; redelivered scores collapse.
-- ===================================================================================
-- A cold-start score (the model had learned fewer than min_labels labels) is a placeholder near 0.5,
-- not a prediction: it sits in a band of its own, `cold_start`, never in low, medium or high.
CREATE OR REPLACE VIEW score_bands AS
SELECT model, if(scores.cold_start, 'cold_start', scores.band) AS band, count() AS customers,
       customers / sum(count()) OVER (PARTITION BY model) AS share,
       avg(probability) AS average_probability, min(probability) AS min_probability,
       max(probability) AS max_probability, countIf(cold_start) AS cold_start
FROM scores FINAL
GROUP BY model, band
ORDER BY model, indexOf(['cold_start', 'low', 'medium', 'high'], band)
;
CREATE OR REPLACE VIEW score_bands_by_segment AS
SELECT model, segment, band, count() AS customers,
       customers / sum(count()) OVER (PARTITION BY model, segment) AS share,
       avg(probability) AS average_probability
FROM
(
    SELECT s.model AS model, s.band AS band, s.probability AS probability,
           if(empty(p.segments), ['none'], CAST(p.segments, 'Array(String)')) AS customer_segments
    FROM (SELECT customer_id, model, if(cold_start, 'cold_start', band) AS band, probability
          FROM scores FINAL) AS s
    LEFT JOIN (SELECT customer_id, segments FROM customer_profiles FINAL) AS p ON p.customer_id = s.customer_id
)
ARRAY JOIN customer_segments AS segment
GROUP BY model, segment, band
ORDER BY model, segment, indexOf(['cold_start', 'low', 'medium', 'high'], band)
;
-- Privacy (README: Privacy and data rights). No table here holds personal data: a customer is
-- named by `subject`, the keyed hash (HMAC) of their id.
-- Where each erasure or export was carried out, and when.
CREATE TABLE IF NOT EXISTS privacy_audit
(
    request_id    String,
    subject       String,
    action        LowCardinality(String),
    location      LowCardinality(String),
    rows          UInt64,
    detail        String,
    completed_at  DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (subject, completed_at, location)
;
-- Erased customers: messages to them are suppressed; `journey run` hands the list to a fresh broker.
CREATE TABLE IF NOT EXISTS privacy_suppressions
(
    subject     String,
    request_id  String,
    erased_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(erased_at)
ORDER BY subject
;
-- Consent as it changed, each change with the time the next one replaced it (NULL: still in force).
-- The same consent events the message guard folds (processors/messages/consent.py).
CREATE VIEW IF NOT EXISTS consent_history AS
SELECT customer_id, purpose, channel, status, event_time AS valid_from,
       nullIf(leadInFrame(event_time, 1, toDateTime64(0, 3, 'UTC')) OVER w, toDateTime64(0, 3, 'UTC')) AS valid_until,
       valid_until IS NULL AS current, source, event_id
FROM consent_events
WINDOW w AS (PARTITION BY customer_id, purpose, channel ORDER BY event_time, event_id
             ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)
