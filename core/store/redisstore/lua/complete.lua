-- complete.lua: record the outcomes of attempts (Complete).
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12+2i]   item i (0-based): its operation hash
-- KEYS[13+2i]   item i: its unit index
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       worker
-- ARGV[8]       number of items
-- ARGV[9..]     per item: unit, path, lease id, "1" if it succeeded,
--               result (success) or encoded error (failure), "1" for
--               NoRetry, retry delay ms computed in Go (Backoff)
--
-- Returns the outcome per item: 1 recorded, 2 retrying, 3 stale.

local worker = ARGV[7]
local count = tonumber(ARGV[8])
local out = {}
for i = 0, count - 1 do
  local a = 9 + 7 * i
  local key = KEYS[12 + 2 * i]
  local u, p, lease = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local o = held(key, worker, lease)
  if not o then
    out[i + 1] = STALE
  elseif ARGV[a + 3] == "1" then
    finish(key, u, p, o, SUCCEEDED, ARGV[a + 4], nil)
    out[i + 1] = RECORDED
  else
    out[i + 1] = failAttempt(key, u, p, o, ARGV[a + 4], ARGV[a + 5] == "1", tonumber(ARGV[a + 6]))
  end
end
flush()
return out
