-- wrk script: each request carries the next token of a file (one per line), cycling, so that
-- with more tokens than the token cache holds every request is a cache miss.
--   wrk -s bench/tokens.lua URL -- TOKENS_FILE
local tokens = {}
local next_index = 1

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
