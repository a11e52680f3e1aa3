-- reserve.lua: hand up to max ready operations of a lane to a worker under
-- a lease (Reserve). Due delayed retries of both lanes are promoted first.
--
-- KEYS[1..11]   globals, see lib.lua
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       lane (0 or 1)
-- ARGV[8]       worker
-- ARGV[9]       max operations
-- ARGV[10]      lease length, ms
-- ARGV[11]      max delayed retries to promote per lane
-- KEYS[12]      optional: the wake list of the caller's blocked wait, when
--               the store sends this script in one pipeline after that
--               wait (BLMPOP). A token in it means the wait was cut short
--               (cancellation, Close): then nothing is reserved.
-- ARGV[12]      optional, with KEYS[12]: ms to subtract from Redis' clock
--               (TIME) to get the store's clock; the script ran after a
--               wait, so ARGV[2] is stale and NOW is taken from TIME.
--
-- Also drops the lane's stale signal tokens when it leaves nothing ready.
--
-- Returns one flat array: the next due ms of the lane's delayed retries (or
-- false), then 8 values per delivery: "<unit>:<path>", name, args,
-- parent|false, depth|false, attempt, timeout ms, lease id. A malformed
-- record popped from the queue is dropped from it and skipped.

if KEYS[12] then
  if redis.call("LLEN", KEYS[12]) > 0 then
    redis.call("DEL", KEYS[12])
    return {false}
  end
  local t = redis.call("TIME")
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[12])
end

local lane = tonumber(ARGV[7])
local worker = ARGV[8]
local max = tonumber(ARGV[9])
local leaseEnd = NOW + tonumber(ARGV[10])
promote(tonumber(ARGV[11]))

local popped = redis.call("ZPOPMIN", READY[lane + 1], max)
local out = {false}
local n = #popped / 2
if n > 0 then
  local lease = redis.call("INCRBY", LEASE, n) - n
  for j = 1, #popped, 2 do
    local id = string.sub(popped[j], 13)
    local key = opkey(id)
    lease = lease + 1
    local ok, v = pcall(redis.call, "HMGET", key, "s", "n", "a", "p", "h", "t", "T")
    if ok and v[1] == "1" and v[2] then
      local att = (tonumber(v[6] or 0) or 0) + 1
      redis.call("HSET", key, "s", RUNNING, "t", att, "k", worker, "b", NOW, "i", lease)
      redis.call("ZADD", RUNNING_Z[lane + 1], leaseEnd, id)
      local o = #out
      out[o + 1], out[o + 2], out[o + 3], out[o + 4] = id, v[2], v[3] or "", v[4]
      out[o + 5], out[o + 6], out[o + 7], out[o + 8] = v[5], att, tonumber(v[7] or 0) or 0, lease
    end
  end
end
if #out > 1 then alive(worker, leaseEnd) end
-- Nothing left ready: the lane's signal tokens announce work already taken
-- (blocked callers take theirs when it is pushed), so they are dropped
-- rather than waking a next wait for nothing. The store relies on this: a
-- call that got fewer than max may next block on the signal list at once.
if n < max and redis.call("ZCARD", READY[lane + 1]) == 0 then
  redis.call("DEL", SIGNAL[lane + 1])
end
local due = redis.call("ZRANGE", DELAYED[lane + 1], 0, 0, "WITHSCORES")
out[1] = due[2] or false
flush()
return out
