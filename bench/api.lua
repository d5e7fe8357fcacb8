-- wrk script of bench/api.py: builds each request, counts response statuses, prints one JSON line.
-- Arguments (after `--`): mode (bare | subscribe | provide), a prefix for order ids, the API token, user ids.
-- provide: mostly new orders spread over the users; every 10th request repeats the one before it
-- (a duplicate: 200, nothing queued) and every 10th moves the previous order on to "accepted".

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  mode, prefix, token = args[1], args[2], args[3]
  users = {}
  for i = 4, #args do users[#users + 1] = args[i] end
  n = 0
  statuses = {}
  headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

function request()
  n = n + 1
  if mode == "bare" then
    return wrk.format("GET", "/bare")
  end
  if mode == "subscribe" then
    return wrk.format("GET", "/subscribe-status?user_id=" .. users[n % #users + 1], headers)
  end
  local k, status = n, "created"
  if n % 10 == 0 then
    k = n - 1
  elseif n % 10 == 5 then
    k, status = n - 1, "accepted"
  end
  local body = string.format(
    '{"user_id": %s, "horeca_id": "bench-cafe", "order_id": "%s-%d-%d", "status": "%s", "text": "2 x latte"}',
    users[k % #users + 1], prefix, tid, k, status)
  return wrk.format("POST", "/provide_message_to_user/", headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      counts[code] = (counts[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(counts) do parts[#parts + 1] = string.format('"%d": %d', code, count) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ", ")))
end
