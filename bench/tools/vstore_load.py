#!/usr/bin/python3
"""The variable store benchmark's data (bench/vstore.sh).

  vstore_load.py gen DIR CUSTOMERS NOW_MS
      Writes DIR/bodies/NNNNN.json, request bodies of POST /v1/decisions:ingest
      ({"decisions": [...]}, 1000 decisions each), and DIR/events.csv, the
      same decisions as rows of the PostgreSQL baseline's table
      (customer_id, decided_at, decision_id, outcome, amount, merchant_id).
      Every customer cust-0 .. cust-(CUSTOMERS-1) has one decision, every
      other one a second; the decisions come in random order, decided within
      the three days before NOW_MS, at merchants m-0 .. m-999, 70% APPROVED,
      25% REJECTED, 5% REFERRED. Prints the number of decisions.
  vstore_load.py post URL DIR WORKERS
      Posts every body of DIR/bodies to URL, WORKERS keep-alive connections
      in parallel (one process each), each body once; timed from when every
      worker holds its bodies in memory to the last answer. Prints one line:
      decisions counted duplicates expired seconds. Exits 1 on any answer
      other than 200.
"""
import datetime
import http.client
import json
import multiprocessing
import os
import random
import sys
import time
import urllib.parse

BATCH = 1000
DOC = ('{"decision_id":"%s","purchase_id":"p-%d","customer_id":"cust-%d","merchant_id":"m-%d","country":"SE",'
       '"amount":{"value":%d,"currency":"SEK"},"outcome":"%s","reasons":["%s"],'
       '"policy":{"name":"bnpl-checkout","version":"2026.11.3"},'
       '"checks":[{"kind":"CREDIT","provider":"bureau-x","outcome":"PASS","score":0.12,"latency_ms":85,'
       '"performed_at":"%s"},{"kind":"FRAUD","provider":"in-house","outcome":"PASS","score":0.02,"latency_ms":4,'
       '"performed_at":"%s"}],"decided_at":"%s","producer":"bench","attributes":{"channel":"web"}}')
REASON = {"APPROVED": "LOW_RISK", "REJECTED": "HIGH_RISK", "REFERRED": "MANUAL_REVIEW"}


_days = {}


def rfc3339(ms):
    day, rest = divmod(ms, 86400000)
    date = _days.get(day)
    if date is None:
        date = _days[day] = datetime.datetime.fromtimestamp(day * 86400, datetime.timezone.utc).strftime("%Y-%m-%dT")
    s, frac = divmod(rest, 1000)
    return "%s%02d:%02d:%02d.%03dZ" % (date, s // 3600, s // 60 % 60, s % 60, frac)


def gen(out, customers, now_ms):
    rnd = random.Random(20261124)
    order = list(range(customers)) + list(range(0, customers, 2))
    rnd.shuffle(order)
    rand = rnd.random
    os.makedirs(os.path.join(out, "bodies"), exist_ok=True)
    span = 3 * 86400 * 1000
    with open(os.path.join(out, "events.csv"), "w") as csv:
        for b in range(0, len(order), BATCH):
            docs = []
            for i in range(b, min(b + BATCH, len(order))):
                c = order[i]
                r = rand()
                outcome = "APPROVED" if r < 0.70 else "REJECTED" if r < 0.95 else "REFERRED"
                ms = now_ms - 60000 - int(rand() * span)
                at = rfc3339(ms)
                merchant = int(rand() * 1000)
                amount = 1000 + int(rand() * 499000)
                did = "00000000-0000-4000-8000-%012x" % i
                docs.append(DOC % (did, i, c, merchant, amount, outcome, REASON[outcome], at, at, at))
                csv.write("cust-%d,%s,%s,%s,%d,m-%d\n" % (c, at, did, outcome, amount, merchant))
            with open(os.path.join(out, "bodies", "%05d.json" % (b // BATCH)), "w") as f:
                f.write('{"decisions":[' + ",".join(docs) + "]}")
    print(len(order))


def worker(url, files, ready, go, results):
    u = urllib.parse.urlsplit(url)
    bodies = []
    for name in files:
        with open(name, "rb") as f:
            bodies.append(f.read())
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + os.environ.get("BENCH_TOKEN", "")}
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.connect()
    ready.release()
    go.wait()
    tot = [0, 0, 0, 0]
    for body in bodies:
        conn.request("POST", u.path, body, headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            results.put(("error", "HTTP %d: %s" % (resp.status, data[:300].decode(errors="replace"))))
            return
        r = json.loads(data)
        for k, name in enumerate(("received", "counted", "duplicates", "expired")):
            tot[k] += r[name]
    results.put(("ok", tot))


def post(url, out, workers):
    d = os.path.join(out, "bodies")
    files = sorted(os.path.join(d, n) for n in os.listdir(d))
    ready, go, results = multiprocessing.Semaphore(0), multiprocessing.Event(), multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(url, files[w::workers], ready, go, results))
             for w in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    t0 = time.monotonic()
    go.set()
    tot, failed = [0, 0, 0, 0], None
    for _ in procs:
        kind, r = results.get()
        if kind == "ok":
            tot = [a + b for a, b in zip(tot, r)]
        else:
            failed = failed or r
    t1 = time.monotonic()
    for p in procs:
        p.join()
    if failed:
        print("vstore_load: " + failed, file=sys.stderr)
        sys.exit(1)
    print("%d %d %d %d %.3f" % (tot[0], tot[1], tot[2], tot[3], t1 - t0))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "post":
        post(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
