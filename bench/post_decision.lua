-- wrk script: POST /v1/decisions with a unique decision_id per request.
-- Each thread draws a random 32-bit prefix and counts up, so ids never
-- repeat within a run (a repeat would be an idempotent 200, not a write).
local token = os.getenv("BENCH_TOKEN")
local counter = 0
local prefix = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
  prefix = math.random(0, 0x7fffffff)
end

local body_fmt = '{"decision_id":"%08x-%04x-4%03x-a%03x-%012d","purchase_id":"p-%d","customer_id":"cust-%d",' ..
  '"merchant_id":"m-%d","country":"SE","amount":{"value":12999,"currency":"SEK"},"outcome":"APPROVED",' ..
  '"reasons":["LOW_RISK"],"policy":{"name":"bnpl-checkout","version":"2026.11.3"},' ..
  '"checks":[{"kind":"CREDIT","provider":"bureau-x","outcome":"PASS","score":0.12,"latency_ms":85,' ..
  '"performed_at":"2026-11-24T10:00:00.123Z"},{"kind":"FRAUD","provider":"in-house","outcome":"PASS",' ..
  '"score":0.02,"latency_ms":4,"performed_at":"2026-11-24T10:00:00.180Z"}],' ..
  '"decided_at":"2026-11-24T10:00:00.250Z","producer":"bench","attributes":{"channel":"web"}}'

-- BENCH_DELAY_MS paces each connection (connections x 1000/delay = rate).
local pace = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pace > 0 then
  function delay() return pace end
end

local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. (token or "")}

function request()
  counter = counter + 1
  local body = string.format(body_fmt, prefix, tid % 0x10000, counter % 0x1000, math.random(0, 0xfff), counter,
    counter, counter % 100000, counter % 500)
  return wrk.format("POST", "/v1/decisions", headers, body)
end
