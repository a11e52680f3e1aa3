-- reclaim.lua: take back leases that lapsed (queue the work again, or fail
-- it once it has lapsed too often without progress), promote due delayed
-- retries, and trim dead letters and the index of runs past their
-- retention (Reclaim).
--
-- KEYS[1..11]   globals, see lib.lua
-- ARGV[1..6]    common header, see lib.lua; ARGV[2] is Reclaim's now
-- ARGV[7]       max lapses in a row without progress
-- ARGV[8]       error type of an operation that lapsed too often
-- ARGV[9]       max operations to move per lane and kind (the rest on the
--               next call, so that one call never blocks Redis for long)
--
-- Returns {moved, lapses}: lapses is the flat report of lapse() (lib.lua).

local maxLapses = tonumber(ARGV[7])
local lostType = ARGV[8]
local max = tonumber(ARGV[9])
local n = promote(max)
for lane = 0, 1 do
  local lapsed = redis.call("ZRANGEBYSCORE", RUNNING_Z[lane + 1], "-inf", "(" .. NOW, "LIMIT", 0, max)
  for _, id in ipairs(lapsed) do
    local key = opkey(id)
    local o = load(key)
    if not o or o.s ~= RUNNING then
      redis.call("ZREM", RUNNING_Z[lane + 1], id)
    else
      lapse(key, id, lane, o, maxLapses, lostType)
      n = n + 1
    end
  end
end
redis.call("ZREMRANGEBYSCORE", DEAD, "-inf", "(" .. (NOW - FAILED_TTL))
-- Index entries of runs whose keys have all expired.
redis.call("XTRIM", RUNS, "MINID", "~", NOW - PENDING_TTL)
flush()
return {n, LAPSES}
