-- wrk script: a stream of distinct café purchases from a pos key at the kiosk.
-- Each wrk thread numbers its own receipts; members and baskets are spread, one in
-- five pays 1.00 with points. Environment: KOPILKA_KEY, KOPILKA_MEMBERS, KOPILKA_RUN.
local key = os.getenv("KOPILKA_KEY")
local members = tonumber(os.getenv("KOPILKA_MEMBERS") or "1000")
local run = os.getenv("KOPILKA_RUN") or "run"
local baskets = {
  '[{"sku":"CAP-300","qty":1},{"sku":"CRS-1","qty":1}]',
  '[{"sku":"TEA-400","qty":2},{"sku":"CRS-1","qty":1}]',
  '[{"sku":"LUNCH-1","qty":1},{"sku":"ESP-60","qty":1}]',
  '[{"sku":"SOUP-1","qty":1},{"sku":"TEA-400","qty":1}]',
}
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  statuses = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
  n = n + 1
  local member = 1 + (thread_id * 7919 + n * 104729) % members
  local redeem = ""
  if n % 5 == 4 then redeem = ',"redeem":"1.00"' end
  local body = string.format(
    '{"receipt_id":"%s-%d-%d","location":"kiosk","member":"%d","lines":%s%s}',
    run, thread_id, n, member, baskets[n % 4 + 1], redeem)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local counts = {}
  for status, count in pairs(totals) do
    counts[#counts + 1] = string.format('"%d":%d', status, count)
  end
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    table.concat(counts, ",")))
end
