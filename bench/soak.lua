-- wrk script for `make soak`: each request carries the next token of a file (one per line),
-- cycling; every answer's status is counted and printed at the end as `STATUS <code> <n>`
-- lines, so the soak can tell a refused valid token (401/403) from a server error (5xx); the
-- first few answers other than 200 are printed as `REFUSED <code> <challenge or body>` lines,
-- so that a refusal says why.
--   wrk -s bench/soak.lua URL -- TOKENS_FILE
-- Tokens from a file, cycling: bench/tokens.lua's init() and request(), beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "tokens.lua")

local threads = {}
statuses = {}
refusals = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and #refusals < 5 then
    local why = body or ""
    for name, value in pairs(headers) do
      if string.lower(name) == "www-authenticate" then
        why = value .. " " .. why
      end
    end
    refusals[#refusals + 1] = status .. " " .. string.gsub(string.sub(why, 1, 300), "[\r\n]", " ")
  end
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
  for _, thread in ipairs(threads) do
    for _, why in ipairs(thread:get("refusals")) do
      io.write("REFUSED " .. why .. "\n")
    end
  end
end
