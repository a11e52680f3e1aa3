-- stats.lua: read the lanes (Stats), in one consistent snapshot.
--
-- KEYS[1..11]   globals, see lib.lua (only the lane ZSETs are read)
-- ARGV[1]       key prefix "{<ns>}:"
-- ARGV[2]       max priority bands to scan for the oldest ready operation
--
-- Returns per lane {ready, delayed, running, oldest ready-at ms or -1}.
-- The oldest ready operation is the first (lowest sequence) of one of the
-- priority bands, so only band heads are read: one ZRANGEBYSCORE per
-- distinct priority waiting, up to ARGV[2].

local P = ARGV[1]
local maxBands = tonumber(ARGV[2])
local out = {}
for lane = 0, 1 do
  local ready = KEYS[1 + lane]
  local oldest = -1
  local head = redis.call("ZRANGE", ready, 0, 0, "WITHSCORES")
  local bands = 0
  while #head > 0 and bands < maxBands do
    local ok, y = pcall(redis.call, "HGET", P .. "o:" .. string.sub(head[1], 13), "y")
    y = ok and tonumber(y)
    if y and (oldest < 0 or y < oldest) then oldest = y end
    bands = bands + 1
    head = redis.call("ZRANGEBYSCORE", ready, "(" .. head[2], "+inf", "WITHSCORES", "LIMIT", 0, 1)
  end
  out[lane + 1] = {
    redis.call("ZCARD", ready),
    redis.call("ZCARD", KEYS[3 + lane]),
    redis.call("ZCARD", KEYS[5 + lane]),
    oldest,
  }
end
return out
