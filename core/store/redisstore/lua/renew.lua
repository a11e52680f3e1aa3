-- renew.lua: extend the leases a worker holds (Renew).
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12+i]    item i (0-based): its operation hash
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       worker
-- ARGV[8]       lease length, ms
-- ARGV[9..]     per item: unit, path, lease id
--
-- Also records the renewal on each operation (field v, which Reclaim reads
-- as progress) and the worker's new lease end in the alive registry.
--
-- Returns the 1-based indexes of the items whose lease was lost.

local worker = ARGV[7]
local leaseEnd = NOW + tonumber(ARGV[8])
local lost = {}
local i = 0
while ARGV[9 + 3 * i] do
  local a = 9 + 3 * i
  -- Renew is the heartbeat of everything held: read only what it checks.
  local ok, v = pcall(redis.call, "HMGET", KEYS[12 + i], "s", "i", "k", "l")
  local lane = ok and tonumber(v[4] or 0)
  if ok and v[1] == "2" and v[2] == ARGV[a + 2] and (worker == "" or v[3] == worker) and (lane == 0 or lane == 1) then
    redis.call("ZADD", RUNNING_Z[lane + 1], "XX", leaseEnd, ARGV[a] .. ":" .. ARGV[a + 1])
    redis.call("HSET", KEYS[12 + i], "v", NOW)
  else
    lost[#lost + 1] = i + 1
  end
  i = i + 1
end
if worker ~= "" and i > #lost then
  alive(worker, leaseEnd)
end
return lost
