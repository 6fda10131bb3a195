#!/usr/bin/python3
"""Reads every finished file of an archive with python3-avro (no project
code), each under its own writer schema, as a standard reader would.

  archive_versions.py ROOT            one line per file, sorted by partition and offset:
      <partition>+<first offset> <records> <model names, comma separated | ->
      ("-" when the file's schema has no model field: a version 1 file)
  archive_versions.py --records ROOT  one line per record:
      <decision_id> <1 if the file's schema is version 2 or later, else 0> <model name or ->

Exits non-zero if a file does not read."""
import os
import re
import sys

import avro.datafile
import avro.io

records_mode = sys.argv[1] == "--records"
root = sys.argv[2] if records_mode else sys.argv[1]
name_re = re.compile(r"^decisions\+(\d+)\+(\d{20})\.avro$")


def model_name(rec):
    return (rec.get("model") or {}).get("name") or "-"


lines, bad = [], 0
for dirpath, _, files in os.walk(os.path.join(root, "decisions")):
    for f in files:
        m = name_re.match(f)
        if not m:
            continue
        try:
            with open(os.path.join(dirpath, f), "rb") as fp:
                reader = avro.datafile.DataFileReader(fp, avro.io.DatumReader())
                v2 = "model" in [x.name for x in reader.datum_reader.writers_schema.fields]
                records = list(reader)
                reader.close()
        except Exception as e:  # report and keep reading: the test counts failures
            bad += 1
            print("UNREADABLE", f, e, file=sys.stderr)
            continue
        if records_mode:
            for r in records:
                print(r["decision_id"], 1 if v2 else 0, model_name(r))
        else:
            values = ",".join(model_name(r) for r in records) if v2 else "-"
            lines.append((int(m.group(1)), int(m.group(2)), "%s+%d %d %s" % (m.group(1), int(m.group(2)), len(records), values)))
for line in sorted(lines):
    print(line[2])
sys.exit(1 if bad else 0)
