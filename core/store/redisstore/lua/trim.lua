-- trim.lua: delete the oldest finished runs, all their keys, ahead of their
-- retention (Trim): while the index holds more runs than the maximum, or as
-- many as the caller asks for when Redis is close to its memory limit. A run
-- still unfinished (running, or requeued) is skipped, and stays listed.
--
-- KEYS[1..11]   globals, see lib.lua
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       max runs to keep
-- ARGV[8]       runs to delete whatever the count (memory pressure), or 0
-- ARGV[9]       max runs to delete in this call
--
-- Returns how many runs were deleted.

local maxRuns = tonumber(ARGV[7])
local forced = tonumber(ARGV[8])
local cap = tonumber(ARGV[9])
local total = redis.call("XLEN", RUNS)
local want = math.min(math.max(total - maxRuns, forced), cap, total)
if want <= 0 then return 0 end
-- Look a little past want: unfinished runs at the head are skipped.
local entries = redis.call("XRANGE", RUNS, "-", "+", "COUNT", 2 * want)
local deleted = 0
for _, entry in ipairs(entries) do
  if deleted >= want then break end
  local u = entry[2][2]
  local st = tonumber(redis.call("HGET", P .. "o:" .. u .. ":" .. ROOT, "s") or 0)
  if st == 0 or st >= SUCCEEDED then
    local idx = unitIndex(u)
    local batch = {}
    for i = 1, #idx, 2 do
      batch[#batch + 1] = P .. "o:" .. u .. ":" .. idx[i]
      if #batch == 500 then
        redis.call("DEL", unpack(batch))
        batch = {}
      end
    end
    batch[#batch + 1] = P .. "u:" .. u
    batch[#batch + 1] = P .. "bc:" .. u
    batch[#batch + 1] = P .. "bcd:" .. u
    -- A root whose index is gone (expired) still has its key if alive.
    batch[#batch + 1] = P .. "o:" .. u .. ":" .. ROOT
    redis.call("DEL", unpack(batch))
    UNITS[u] = nil
    redis.call("ZREM", DEAD, u)
    redis.call("XDEL", RUNS, entry[1])
    deleted = deleted + 1
  end
end
return deleted
