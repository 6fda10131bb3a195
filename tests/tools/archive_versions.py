#!/usr/bin/python3
"""Reads every finished file of an archive with python3-avro (no project
code), each under its own writer schema, and prints one line per file:
  <partition>+<first offset> <records> <FIELD values, comma separated | ->
where the values are FIELD's in every record, "-" when the file's schema
has no such field. Lines sorted by partition and offset. Exits non-zero if a
file does not read.
usage: archive_versions.py ROOT FIELD"""
import os
import re
import sys

import avro.datafile
import avro.io

root, field = sys.argv[1], sys.argv[2]
name_re = re.compile(r"^decisions\+(\d+)\+(\d{20})\.avro$")
lines = []
for dirpath, _, files in os.walk(os.path.join(root, "decisions")):
    for f in files:
        m = name_re.match(f)
        if not m:
            continue
        with open(os.path.join(dirpath, f), "rb") as fp:
            reader = avro.datafile.DataFileReader(fp, avro.io.DatumReader())
            names = [x.name for x in reader.datum_reader.writers_schema.fields]
            records = list(reader)
            reader.close()
        values = ",".join(str(r[field]) for r in records) if field in names else "-"
        lines.append((int(m.group(1)), int(m.group(2)), "%s+%d %d %s" % (m.group(1), int(m.group(2)), len(records), values)))
for line in sorted(lines):
    print(line[2])
