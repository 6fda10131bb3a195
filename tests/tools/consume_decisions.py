#!/usr/bin/python3
"""Reads a whole topic with an independent Kafka client (kafka-python) and
decodes every value as the Confluent wire format with the Avro schemas in
schemas/decision/, or in SCHEMA_DIR if given (python3-avro). Prints one line per record:
    <partition> <offset> <key> <decision_id header> <decision_id in the record> <schema id>
Transaction markers are skipped (this client reads read_uncommitted: on a
topic written in transactions it also prints the records of aborted ones).
Exits non-zero if any record does not decode, or if the topic's end
(as it was when the script started) is not reached within 60 s. Debian's
/usr/bin/python3 has both libraries; a pyenv python on PATH may not.

With --config, the client's settings are that file's kafka-python keyword
arguments (kafka-cluster.sh's DIR/client.json: bootstrap servers,
SASL_SSL, SCRAM-SHA-512, the CA) instead of a plaintext BOOTSTRAP.

usage: consume_decisions.py BOOTSTRAP TOPIC [SCHEMA_DIR]
       consume_decisions.py --config CLIENT_JSON TOPIC [SCHEMA_DIR]
"""
import io
import json
import struct
import sys
import time

import avro.io
import avro.schema
from kafka import KafkaConsumer, TopicPartition

args = sys.argv[1:]
if args[0] == "--config":
    settings = json.load(open(args[1]))
    args = args[2:]
else:
    settings = {"bootstrap_servers": args[0]}
    args = args[1:]
topic = args[0]
schema_dir = args[1] if len(args) > 1 else "schemas/decision"
manifest = json.load(open(schema_dir + "/manifest.json"))
schemas = {v["id"]: avro.schema.parse(open(schema_dir + "/" + v["file"]).read()) for v in manifest["versions"]}

consumer = KafkaConsumer(enable_auto_commit=False, group_id=None, **settings)
deadline = time.monotonic() + 60
partitions = consumer.partitions_for_topic(topic)
while partitions is None and time.monotonic() < deadline:  # metadata not there yet
    time.sleep(0.1)
    partitions = consumer.partitions_for_topic(topic)
if partitions is None:
    sys.exit("no topic %s" % topic)
tps = [TopicPartition(topic, p) for p in sorted(partitions)]
consumer.assign(tps)
consumer.seek_to_beginning()
end = consumer.end_offsets(tps)


def is_marker(m):
    """A transaction marker (control record: key = version 0 and type 0
    abort / 1 commit, value = version 0 and the coordinator epoch).
    kafka-python 2.0.2 hands markers out as records, and does not say a
    record came from a control batch; a decision's key is a customer id,
    never these 4 bytes."""
    return m.key in (b"\0\0\0\0", b"\0\0\0\1") and m.value is not None and len(m.value) == 6 and m.value[:2] == b"\0\0"


bad = 0
while any(consumer.position(tp) < end[tp] for tp in tps):
    if time.monotonic() > deadline:
        sys.exit("topic %s: end %s not reached in 60 s" % (topic, end))
    for records in consumer.poll(timeout_ms=500).values():
        for m in records:
            if is_marker(m):  # read past (the position moves on), not printed
                continue
            headers = {k: v.decode() for k, v in m.headers}
            try:
                magic, sid = m.value[0], struct.unpack(">I", m.value[1:5])[0]
                assert magic == 0, "magic byte %d" % magic
                rec = avro.io.DatumReader(schemas[sid]).read(avro.io.BinaryDecoder(io.BytesIO(m.value[5:])))
                print(m.partition, m.offset, m.key.decode(), headers.get("decision_id"), rec["decision_id"], sid)
            except Exception as e:  # report and keep reading: the test counts failures
                bad += 1
                print("UNDECODABLE", m.partition, m.offset, e, file=sys.stderr)
consumer.close()
sys.exit(1 if bad else 0)
