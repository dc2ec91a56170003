-- wrk summary in one machine-readable line (parsed by run.sh). done() runs once after the
-- run, so it costs nothing per request. status = responses outside 2xx/3xx; run.sh also
-- checks 2xx-only with a byte count and a pre-flight request.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
