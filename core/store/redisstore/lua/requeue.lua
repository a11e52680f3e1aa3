-- requeue.lua: put a failed or cancelled unit back to work (Requeue). The
-- root becomes pending with its attempts reset; its failed and cancelled
-- calls are forgotten, the succeeded ones kept for the replay.
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12]      the unit index
-- KEYS[13]      the root operation hash
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       unit
--
-- Returns {1}, {-1} unknown unit, {-2, status} the root is not failed or
-- cancelled, {-3} malformed root.

local u = ARGV[7]
local root = KEYS[13]
local o, bad = load(root)
if bad then return {-3} end
if not o then return {-1} end
if o.s ~= FAILED and o.s ~= CANCELLED then return {-2, o.s} end

local idx = unitIndex(u)
for i = 1, #idx, 2 do
  local q = idx[i]
  if q ~= ROOT then
    local key = P .. "o:" .. u .. ":" .. q
    local ko = load(key)
    if not ko or ko.s == FAILED or ko.s == CANCELLED then
      redis.call("DEL", key)
      redis.call("HDEL", KEYS[12], q)
    end
  end
end
UNITS[u] = nil
redis.call("HDEL", root, "e", "r", "k", "b", "f", "x", "i", "w")
enqueue(root, u .. ":" .. ROOT, o.l, o.P, "t", 0)
redis.call("ZREM", DEAD, u)
setTTL(u, PENDING_TTL)
flush()
return {1}
