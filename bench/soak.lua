-- wrk script for `make soak`: each request carries the next token of a file (one per line),
-- cycling; every answer's status is counted and printed at the end as `STATUS <code> <n>`
-- lines, so the soak can tell a refused valid token (401/403) from a server error (5xx).
--   wrk -s bench/soak.lua URL -- TOKENS_FILE
-- Tokens from a file, cycling: bench/tokens.lua's init() and request(), beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "tokens.lua")

local threads = {}
statuses = {}

function setup(thread)
  threads[#threads + 1] = thread
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
