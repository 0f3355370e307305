-- wrk script for ./load/run.sh: a mixed workload of creates (10 %), connects (15 %),
-- history reads (10 %), room lists (5 %) and messages (60 %) over pairs made beforehand
-- (LOAD_DATA names their Lua file).
dofile(os.getenv("LOAD_DATA"))

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  math.randomseed(os.time() + id * 7919)
  sequence = 0
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  sequence = sequence + 1
  local p = pairs_data[math.random(#pairs_data)]
  local r = math.random()
  if r < 0.1 then
    return wrk.format("POST", "/users/create", headers, "{}")
  elseif r < 0.25 then
    return wrk.format("POST", "/users/" .. p.bpub .. "/connect", headers,
      '{"privateId":"' .. p.a .. '"}')
  elseif r < 0.35 then
    return wrk.format("POST", "/rooms/" .. p.room .. "/messages", headers,
      '{"privateId":"' .. p.b .. '","limit":50}')
  elseif r < 0.4 then
    return wrk.format("POST", "/users/rooms", headers, '{"privateId":"' .. p.b .. '"}')
  else
    return wrk.format("POST", "/rooms/" .. p.room .. "/message", headers,
      '{"privateId":"' .. p.a .. '","message":"load ' .. id .. "-" .. sequence .. '"}')
  end
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("requests: %d in %.1f s, %.0f per second\n", summary.requests, seconds, summary.requests / seconds))
  io.write(string.format("latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  local statuses = {}
  for status, n in pairs(total) do table.insert(statuses, string.format("%d: %d", status, n)) end
  table.sort(statuses)
  io.write("statuses: " .. table.concat(statuses, ", ") .. "\n")
  io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n", e.connect, e.read, e.write, e.timeout))
  io.write(string.format("users created: %d\n", total[201] or 0))
  io.write(string.format("messages accepted: %d\n", total[204] or 0))
  local failed = 0
  for status, n in pairs(total) do if status >= 400 then failed = failed + n end end
  io.write(string.format("error responses: %d\n", failed))
end
