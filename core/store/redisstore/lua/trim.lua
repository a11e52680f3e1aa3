-- trim.lua: delete the oldest finished runs, all their keys, ahead of their
-- retention (Trim): while there are more finished runs than the maximum, or
-- as many as the caller asks for when Redis is close to its memory limit.
--
-- KEYS[1..11]   globals, see lib.lua
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       max finished runs to keep
-- ARGV[8]       runs to delete whatever the count (memory pressure), or 0
-- ARGV[9]       max runs to delete in this call
--
-- Returns how many runs were deleted.

local maxRuns = tonumber(ARGV[7])
local forced = tonumber(ARGV[8])
local cap = tonumber(ARGV[9])
local total = redis.call("ZCARD", DONE)
local want = math.min(math.max(total - maxRuns, forced), cap, total)
if want <= 0 then return 0 end
local units = redis.call("ZRANGE", DONE, 0, want - 1)
for _, u in ipairs(units) do
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
  -- A root whose index is gone (expired) still has its key if alive.
  batch[#batch + 1] = P .. "o:" .. u .. ":" .. ROOT
  redis.call("DEL", unpack(batch))
  UNITS[u] = nil
  redis.call("ZREM", DEAD, u)
  redis.call("ZREM", DONE, u)
end
return #units
