-- reclaim.lua: return operations whose lease lapsed to their queue (or fail
-- those that lapsed too often), promote due delayed retries, and trim dead
-- letters past their retention (Reclaim).
--
-- KEYS[1..11]   globals, see lib.lua
-- ARGV[1..6]    common header, see lib.lua; ARGV[2] is Reclaim's now
-- ARGV[7]       MaxLapses
-- ARGV[8]       error type of an operation that lapsed too often
-- ARGV[9]       max operations to move per lane and kind (the rest on the
--               next call, so that one call never blocks Redis for long)
--
-- Returns how many operations were moved.

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
      local u, p = string.match(id, "^(.*):([^:]*)$")
      -- A lapse is the worker's fault, not the operation's: no retry used.
      local lapses = redis.call("HINCRBY", key, "x", 1)
      if lapses > maxLapses then
        finish(key, u, p, o, FAILED, nil, errinfo(lostType, string.format(
          "%s (%s/%s): its worker stopped renewing the lease %d times; not handing it out again",
          o.n, u, p, lapses)))
      else
        redis.call("ZREM", RUNNING_Z[lane + 1], id)
        enqueue(key, id, lane, o.P)
      end
      n = n + 1
    end
  end
end
redis.call("ZREMRANGEBYSCORE", DEAD, "-inf", "(" .. (NOW - FAILED_TTL))
flush()
return n
