-- openinbox.lua: register an inbox, or keep an open one (and its notes)
-- alive (OpenInbox). An inbox opened anew starts empty, even if notes of a
-- closed one with the same name are still there.
--
-- KEYS[1]       the inbox registration
-- KEYS[2]       the inbox's notes
-- ARGV[1]       inbox TTL ms
--
-- Returns 1.

if redis.call("EXISTS", KEYS[1]) == 0 then
  redis.call("DEL", KEYS[2])
end
redis.call("SET", KEYS[1], "1", "PX", ARGV[1])
redis.call("PEXPIRE", KEYS[2], ARGV[1])
return 1
