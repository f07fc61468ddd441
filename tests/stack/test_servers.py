"""Round trips through the real Kafka broker, the real Cassandra node, and Spark with both."""

from __future__ import annotations

import json
import uuid

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

pytestmark = pytest.mark.integration


def test_kafka_round_trip(kafka_bootstrap: str, make_topic) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = make_topic(partitions=1)
    sent = [(b"k%d" % i, uuid.uuid4().bytes + bytes(range(i))) for i in range(5)]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for key, value in sent:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    received = [(msg.key, msg.value) for msg in consumer][: len(sent)]
    consumer.close()
    assert received == sent


def test_schema_is_applied_and_cassandra_round_trips(stack, cassandra_session) -> None:
    tables = {
        row.table_name for row in cassandra_session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
            (stack.keyspace,),
        )
    }
    assert {"trades", "minute_trades", "moving_means", "rejected_records"} <= tables

    symbol = f"TEST:{uuid.uuid4().hex[:8]}"
    cassandra_session.execute(
        f"INSERT INTO {stack.keyspace}.trades (symbol, trade_date, trade_ts, kafka_partition,"
        " kafka_offset, price, volume, conditions, ingest_ts, kafka_topic)"
        " VALUES (%s, '2026-01-02', 1767312000123, 0, 42, 101.5, 0.25, ['1'], 1767312000200,"
        " 'Market')",
        (symbol,),
    )
    row = cassandra_session.execute(
        f"SELECT price, volume, conditions, kafka_offset FROM {stack.keyspace}.trades"
        " WHERE symbol = %s AND trade_date = '2026-01-02'",
        (symbol,),
    ).one()
    assert (row.price, row.volume, row.conditions, row.kafka_offset) == (101.5, 0.25, ["1"], 42)
    cassandra_session.execute(
        f"DELETE FROM {stack.keyspace}.trades WHERE symbol = %s AND trade_date = '2026-01-02'",
        (symbol,),
    )


def test_spark_reads_kafka_and_writes_cassandra(spark, kafka_bootstrap, make_topic,
                                                 make_keyspace, cassandra_session) -> None:
    """Proves the connector jar set is complete: Kafka source, Avro, Cassandra sink."""
    import io

    import fastavro
    from kafka import KafkaProducer
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    topic, keyspace = make_topic(partitions=1), make_keyspace()
    avro_schema = '{"type":"record","name":"R","fields":[{"name":"id","type":"long"}]}'
    parsed = fastavro.parse_schema(json.loads(avro_schema))
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(3):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, {"id": i})
        producer.send(topic, key=b"AAA", value=buffer.getvalue(), partition=0)
    producer.flush()
    producer.close()

    from_kafka = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(
            F.col("key").cast("string").alias("symbol"),
            F.col("offset").alias("kafka_offset"),
            from_avro("value", avro_schema).alias("rec"),
        )
    )
    assertDataFrameEqual(
        from_kafka.select("symbol", "kafka_offset", F.col("rec.id").alias("id")),
        [Row(symbol="AAA", kafka_offset=i, id=i) for i in range(3)],
    )

    rows = (
        from_kafka.select(
            "symbol", "kafka_offset",
            F.to_date(F.lit("2026-01-02")).alias("trade_date"),
            F.to_timestamp(F.lit("2026-01-02 00:00:00")).alias("trade_ts"),
            F.lit(0).alias("kafka_partition"),
            (F.col("rec.id") + F.lit(100.0)).alias("price"),
        )
    )
    (rows.write.format("org.apache.spark.sql.cassandra")
     .options(keyspace=keyspace, table="trades").mode("append").save())
    back = (
        spark.read.format("org.apache.spark.sql.cassandra")
        .options(keyspace=keyspace, table="trades").load()
        .select("symbol", "kafka_offset", "price")
    )
    assertDataFrameEqual(
        back, [Row(symbol="AAA", kafka_offset=i, price=100.0 + i) for i in range(3)]
    )
