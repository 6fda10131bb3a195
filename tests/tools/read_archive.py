#!/usr/bin/python3
"""Reads every finished file of an archive with python3-avro (an Avro
reader that shares no code with this project) and prints one line per
record:  <decision_id> <decided_at ms> <customer_id> <file path relative to root>
With --json, prints instead each record as the JSON document of CONTRACT §1
(timestamps RFC 3339 UTC with milliseconds), read through the shipped
schema as reader schema. Exits non-zero if a file does not read or a
temporary file sits under a final name.
usage: read_archive.py [--json] ROOT"""
import datetime
import json
import os
import re
import sys

import avro.datafile
import avro.io
import avro.schema

as_json = sys.argv[1] == "--json"
root = sys.argv[-1]
manifest = json.load(open("schemas/decision/manifest.json"))
current = next(v for v in manifest["versions"] if v["version"] == manifest["current"])
reader_schema = avro.schema.parse(open("schemas/decision/" + current["file"]).read())


def millis(v):
    """A timestamp-millis value as python-avro returns it: an int when the
    writer's schema lacks the logical type (avro-c writes files without it),
    a datetime otherwise."""
    if isinstance(v, datetime.datetime):
        return int(v.timestamp() * 1000 + (0.5 if v.timestamp() >= 0 else -0.5))
    return v


def render(schema, v):
    """v (as read under schema) as the JSON document of CONTRACT §1."""
    if schema.type == "record":
        return {f.name: render(f.type, v[f.name]) for f in schema.fields}
    if schema.type == "union":
        if v is None:
            return None
        return render(next(b for b in schema.schemas if b.type != "null"), v)
    if schema.type == "array":
        return [render(schema.items, x) for x in v]
    if schema.type == "map":
        return {k: render(schema.values, x) for k, x in v.items()}
    if schema.get_prop("logicalType") == "timestamp-millis":
        ms = millis(v)
        t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)
    return v


name_re = re.compile(r"^decisions\+\d+\+\d{20}\.avro$")
bad = 0
for dirpath, _, files in os.walk(os.path.join(root, "decisions")):
    for f in sorted(files):
        path = os.path.join(dirpath, f)
        if f.startswith("."):
            continue  # unfinished (a crash leftover the archiver sweeps)
        if not name_re.match(f):
            print("BAD NAME", path, file=sys.stderr)
            bad += 1
            continue
        try:
            with open(path, "rb") as fh:
                for rec in avro.datafile.DataFileReader(fh, avro.io.DatumReader(readers_schema=reader_schema)):
                    if as_json:
                        print(json.dumps(render(reader_schema, rec), separators=(",", ":")))
                        continue
                    print(rec["decision_id"], millis(rec["decided_at"]), rec["customer_id"], os.path.relpath(path, root))
        except Exception as e:
            print("UNREADABLE", path, e, file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
