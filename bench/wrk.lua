-- wrk script for the load test (bench/load drives it). Without arguments it
-- requests the path given on the command line; with a cookies file (one
-- session cookie value per line) it rotates over those sessions, so every
-- request is a different signed-in browser; with a tokens file and "bearer",
-- over those API tokens. It counts answers that are not
-- 200 and prints one JSON line at the end.
local cookies = {}
local threads = {}
local i = 0
bad = 0 -- global: done() reads it from each thread

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local header = "Cookie"

function init(args)
  if args[1] then
    -- A second argument "bearer": the lines are API tokens.
    local bearer = args[2] == "bearer"
    if bearer then header = "Authorization" end
    for line in io.lines(args[1]) do
      if bearer then
        cookies[#cookies + 1] = "Bearer " .. line
      else
        cookies[#cookies + 1] = "doorman_session=" .. line .. "; doorman_csrf=bench-csrf-token-bench-csrf-token-bench-csr"
      end
    end
    -- Each thread starts at its own share of the list: without this both
    -- threads walk the same sequence in step and every session gets two
    -- requests at once.
    i = math.floor((id - 1) * #cookies / 2)
  end
end

function request()
  if #cookies == 0 then
    return wrk.format("GET")
  end
  i = i % #cookies + 1
  return wrk.format("GET", nil, { [header] = cookies[i] })
end

function response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local non200 = 0
  for _, t in ipairs(threads) do
    non200 = non200 + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"non200":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    non200, e.connect + e.read + e.write + e.timeout))
end
