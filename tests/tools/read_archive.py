#!/usr/bin/python3
"""Reads every finished file of an archive with python3-avro (an Avro
reader that shares no code with this project) and prints one line per
record:  <decision_id> <decided_at ms> <customer_id> <file path relative to root>
Exits non-zero if a file does not read or a temporary file sits under a
final name. usage: read_archive.py ROOT"""
import datetime
import os
import re
import sys

import avro.datafile
import avro.io

root = sys.argv[1]
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
                for rec in avro.datafile.DataFileReader(fh, avro.io.DatumReader()):
                    d = rec["decided_at"]
                    ms = int(d.timestamp() * 1000) if isinstance(d, datetime.datetime) else d
                    print(rec["decision_id"], ms, rec["customer_id"], os.path.relpath(path, root))
        except Exception as e:
            print("UNREADABLE", path, e, file=sys.stderr)
            bad += 1
sys.exit(1 if bad else 0)
