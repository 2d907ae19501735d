-- wrk script for `make soak`: each request carries the next token of a file (one per line),
-- cycling; every answer's status is counted and printed at the end as `STATUS <code> <n>`
-- lines, so the soak can tell a refused valid token (401/403) from a server error (5xx).
--   wrk -s bench/soak.lua URL -- TOKENS_FILE
local tokens = {}
local next_index = 1
local threads = {}
statuses = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
end

function request()
  local value = tokens[next_index]
  next_index = next_index % #tokens + 1
  return wrk.format(nil, nil, { Authorization = value })
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      total[code] = (total[code] or 0) + n
    end
  end
  for code, n in pairs(total) do
    io.write(string.format("STATUS %d %d\n", code, n))
  end
end
