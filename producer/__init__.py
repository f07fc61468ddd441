"""Finnhub trades -> Avro -> Kafka producer (`python -m producer live|replay|synthetic`).

Importable pieces: `producer.messages` (pure parsing/validation), `producer.avro_codec`
(encode/decode with schemas/trade.avsc), `producer.synthetic` (deterministic raw
Finnhub messages), `producer.replay` (record files), `producer.finnhub` (WebSocket
client), `producer.kafka_sink`, `producer.app.main(config)`.
"""
