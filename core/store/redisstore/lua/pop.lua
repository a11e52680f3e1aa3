-- pop.lua: take up to max notes from an inbox (Pop without waiting), and
-- keep the inbox alive for another InboxTTL.
--
-- KEYS[1]       the inbox registration
-- KEYS[2]       the inbox's notes
-- ARGV[1]       max notes, 0 for all
-- ARGV[2]       inbox TTL ms
--
-- Returns the notes (oldest first), or -1 if the inbox is not open.

if redis.call("EXISTS", KEYS[1]) == 0 then return -1 end
local max = tonumber(ARGV[1])
local notes
if max <= 0 then
  notes = redis.call("LRANGE", KEYS[2], 0, -1)
  redis.call("DEL", KEYS[2])
else
  notes = redis.call("LPOP", KEYS[2], max)
end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
redis.call("PEXPIRE", KEYS[2], ARGV[2])
return notes or {}
