#!/usr/bin/python3
"""Reads a whole topic with an independent Kafka client (kafka-python) and
decodes every value as the Confluent wire format with the Avro schemas in
schemas/decision/, or in SCHEMA_DIR if given (python3-avro). Prints one line per record:
    <partition> <offset> <key> <decision_id header> <decision_id in the record> <schema id>
and exits non-zero if any record does not decode. Debian's /usr/bin/python3
has both libraries; a pyenv python on PATH may not.

usage: consume_decisions.py BOOTSTRAP TOPIC [SCHEMA_DIR]
"""
import io
import json
import struct
import sys

import avro.io
import avro.schema
from kafka import KafkaConsumer

schema_dir = sys.argv[3] if len(sys.argv) > 3 else "schemas/decision"
manifest = json.load(open(schema_dir + "/manifest.json"))
schemas = {v["id"]: avro.schema.parse(open(schema_dir + "/" + v["file"]).read()) for v in manifest["versions"]}

consumer = KafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], auto_offset_reset="earliest",
                         enable_auto_commit=False, consumer_timeout_ms=3000, group_id=None)
bad = 0
for m in consumer:
    headers = {k: v.decode() for k, v in m.headers}
    try:
        magic, sid = m.value[0], struct.unpack(">I", m.value[1:5])[0]
        assert magic == 0, "magic byte %d" % magic
        rec = avro.io.DatumReader(schemas[sid]).read(avro.io.BinaryDecoder(io.BytesIO(m.value[5:])))
        print(m.partition, m.offset, m.key.decode(), headers.get("decision_id"), rec["decision_id"], sid)
    except Exception as e:  # report and keep reading: the test counts failures
        bad += 1
        print("UNDECODABLE", m.partition, m.offset, e, file=sys.stderr)
sys.exit(1 if bad else 0)
