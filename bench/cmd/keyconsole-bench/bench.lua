-- wrk script of keyconsole-bench.
--   BENCH_CREDS   file of Authorization header values, one a line: every
--                 request is a POST form (BENCH_BODY) with the next one
--   BENCH_COOKIE  Cookie header of GET requests
-- done() prints one JSON line with the summary and latency percentiles.

local creds = {}
local credfile = os.getenv("BENCH_CREDS")
local cookie = os.getenv("BENCH_COOKIE")
local body = os.getenv("BENCH_BODY") or ""
local i = 0

if credfile and credfile ~= "" then
  for line in io.lines(credfile) do
    if line ~= "" then creds[#creds + 1] = line end
  end
  request = function()
    i = i + 1
    local h = {
      ["Host"] = wrk.headers["Host"],
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = creds[(i % #creds) + 1],
    }
    return wrk.format("POST", nil, h, body)
  end
elseif cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"mean_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50.0), latency:percentile(90.0), latency:percentile(99.0), latency.max))
end
