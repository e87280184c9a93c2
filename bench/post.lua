-- wrk script: POST the AdmissionReview in $BENCH_BODY, print one JSON line of results at the end.
local path = os.getenv("BENCH_BODY")
local file = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

-- BENCH_ALTERNATE=1: every other request goes to /mutate instead of the URL's path.
if os.getenv("BENCH_ALTERNATE") == "1" then
    local n = 0
    request = function()
        n = n + 1
        return wrk.format(nil, (n % 2 == 0) and "/mutate" or "/validate")
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        '{"requests":%d,"duration_us":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
        '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"non_2xx":%d}\n',
        summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        e.connect, e.read, e.write, e.timeout, e.status))
end
