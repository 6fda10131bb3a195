-- wrk script for bench/vstore.sh: GET /v1/variables/customer/cust-<n> for a
-- random n in [0, VSTORE_CUSTOMERS). With VSTORE_TARGET=floor it asks for
-- /healthz instead, at the same cost to wrk (one random draw and one
-- formatted request each), so that the two runs differ only in the server.
-- VSTORE_DELAY_MS paces each connection: after each answer it waits a whole
-- number of ms drawn uniformly from 1 .. 2 x VSTORE_DELAY_MS - 1 (mean
-- VSTORE_DELAY_MS), so that the connections do not fall in step on wrk's
-- millisecond timer ticks (about conns x 1000 / (delay + latency) per s).
-- BENCH_TOKEN: the bearer token (role lookup), sent on both kinds of request.
local customers = tonumber(os.getenv("VSTORE_CUSTOMERS") or "1000000")
local floor = os.getenv("VSTORE_TARGET") == "floor"
local threads = 0
local headers = {["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")}

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
end

local pace = tonumber(os.getenv("VSTORE_DELAY_MS") or "0")
if pace > 0 then
  function delay() return math.random(1, 2 * pace - 1) end
end

function request()
  local n = math.random(0, customers - 1)
  if floor then
    return wrk.format("GET", "/healthz", headers)
  end
  return wrk.format("GET", string.format("/v1/variables/customer/cust-%d", n), headers)
end
