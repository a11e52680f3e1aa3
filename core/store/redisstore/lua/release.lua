-- release.lua: hand held operations back to their queue without counting
-- an attempt (Release).
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12+i]    item i (0-based): its operation hash
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       worker
-- ARGV[8..]     per item: unit, path, lease id
--
-- Returns the number of operations released.

local worker = ARGV[7]
local n = 0
local i = 0
while ARGV[8 + 3 * i] do
  local a = 8 + 3 * i
  local key = KEYS[12 + i]
  local o = held(key, worker, ARGV[a + 2])
  if o then
    local id = ARGV[a] .. ":" .. ARGV[a + 1]
    redis.call("ZREM", RUNNING_Z[o.l + 1], id)
    -- Handed back unstarted in effect: not an attempt.
    enqueue(key, id, o.l, o.P, "t", math.max(o.t - 1, 0))
    n = n + 1
  end
  i = i + 1
end
flush()
return n
