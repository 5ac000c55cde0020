-- The flash sale for wrk (bench/http.py drives it): exactly TOTAL POSTs of
-- one unit each, every one with its own buyer and its own Idempotency-Key,
-- split between wrk's threads; optionally paced to RATE requests/s.
--
--   wrk -t T -c C -d 600s --latency -s bench/flash_sale.lua URL -- \
--       PATH KEY CHANNEL LABEL TOTAL THREADS RATE MARKERS
--
-- PATH: the sale's path (/goods/{id}/tiers/{tier}/sales); KEY: a bearer API
-- key; CHANNEL: the body's channel; LABEL: prefix of buyers and keys (unique
-- per run); RATE: requests/s over all threads (0: as fast as answered);
-- MARKERS: a directory where each thread writes done-<id> once all its
-- requests are answered (wrk runs by duration: the driver then stops it with
-- SIGINT). done() prints one line "BENCH-JSON {...}": first request and last
-- answer (wall clock), requests sent and answered, answers by status, and
-- wrk's latency percentiles (microseconds).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(0, timespec) -- CLOCK_REALTIME: comparable with the server's clock
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

-- setup and done run in wrk's main Lua state, once per thread and at the end.
local threads = {}
local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
  table.insert(threads, thread)
end

-- Everything below runs in each thread's own Lua state.
local path, channel, label, markers
local quota, interval = 0, 0
local reserved, started_at = 0, nil
sent, answered, first, last = 0, 0, 0, 0
statuses = {}

local function mark_done()
  last = now()
  local file = io.open(markers .. "/done-" .. id, "w")
  if file then
    file:write(string.format("%.6f\n", last))
    file:close()
  end
end

function init(args)
  path, channel, label = args[1], args[3], args[4]
  local total, nthreads, rate = tonumber(args[5]), tonumber(args[6]), tonumber(args[7])
  markers = args[8]
  quota = math.floor(total / nthreads) + ((id < total % nthreads) and 1 or 0)
  interval = rate > 0 and nthreads / rate or 0
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  wrk.headers["Content-Type"] = "application/json"
  if quota == 0 then
    mark_done()
  end
end

-- Called before each request of a connection: reserve the next request of
-- this thread's quota, or park the connection for good once it is spent.
function delay()
  if reserved >= quota then
    return 3600000
  end
  local n = reserved
  reserved = reserved + 1
  if interval == 0 then
    return 0
  end
  local t = now()
  if started_at == nil then
    started_at = t
  end
  local wait = started_at + n * interval - t
  return wait > 0 and math.floor(wait * 1000) or 0
end

function request()
  sent = sent + 1
  if sent == 1 then
    first = now()
  end
  local n = label .. "-" .. id .. "-" .. sent
  wrk.headers["Idempotency-Key"] = "k-" .. n
  local body = '{"buyer":"b-' .. n .. '","channel":"' .. channel
      .. '","quantity":1,"unit_price":{"amount":1999,"currency":"EUR"}}'
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  if answered == quota then
    mark_done()
  end
end

function done(summary, latency, requests)
  local first_all, last_all, sent_all, answered_all = math.huge, 0, 0, 0
  local by_status = {}
  for _, thread in ipairs(threads) do
    local f, l = thread:get("first"), thread:get("last")
    if f > 0 and f < first_all then first_all = f end
    if l > last_all then last_all = l end
    sent_all = sent_all + thread:get("sent")
    answered_all = answered_all + thread:get("answered")
    for status, n in pairs(thread:get("statuses")) do
      by_status[status] = (by_status[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(by_status) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH-JSON {"first": %.6f, "last": %.6f, "sent": %d, "answered": %d, '
    .. '"statuses": {%s}, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"mean_us": %.1f, "wrk_requests": %d, "wrk_duration_us": %d, '
    .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    first_all == math.huge and 0 or first_all, last_all, sent_all, answered_all,
    table.concat(parts, ", "), latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, summary.requests, summary.duration,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
