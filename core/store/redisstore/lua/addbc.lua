-- addbc.lua: add the user's breadcrumbs to their runs' timelines
-- (AddBreadcrumbs). A run the store does not have is skipped.
--
-- KEYS[3i+1]    run i (0-based): its unit index (exists while the run does)
-- KEYS[3i+2]    run i: its breadcrumbs LIST
-- KEYS[3i+3]    run i: its dropped-breadcrumbs counter
-- ARGV[1]       max breadcrumbs kept per run
-- ARGV[2]       TTL ms for a run whose index has none (not expected)
-- ARGV[3..]     per run: n, then n msgpack-encoded breadcrumbs
--
-- Returns how many breadcrumbs were added.

local max = tonumber(ARGV[1])
local added = 0
local a = 3
local i = 0
while ARGV[a] do
  local n = tonumber(ARGV[a])
  local uidx, list, dropped = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local ttl = redis.call("PTTL", uidx)
  if ttl == -2 then
    -- the run is gone (or never was): its breadcrumbs have nowhere to go
  else
    if ttl < 0 then ttl = tonumber(ARGV[2]) end
    local len = redis.call("RPUSH", list, unpack(ARGV, a + 1, a + n))
    if len > max then
      redis.call("LTRIM", list, len - max, -1)
      redis.call("INCRBY", dropped, len - max)
      redis.call("PEXPIRE", dropped, ttl)
    end
    redis.call("PEXPIRE", list, ttl)
    added = added + n
  end
  a = a + n + 1
  i = i + 1
end
return added
