-- closeinbox.lua: drop an inbox and its notes (CloseInbox). An empty
-- string is left in the notes list for a short while: it wakes a Pop that
-- is blocked on the list, which then finds the inbox gone.
--
-- KEYS[1]       the inbox registration
-- KEYS[2]       the inbox's notes
-- KEYS[3]       the alive registry (see lib.lua): the inbox's owner, which
--               has handed back what it held, leaves it
-- ARGV[1]       how long the wake-up marker may linger, ms
-- ARGV[2]       the inbox (and worker) name
--
-- Returns 1.

redis.call("DEL", KEYS[1], KEYS[2])
redis.call("ZREM", KEYS[3], ARGV[2])
redis.call("RPUSH", KEYS[2], "")
redis.call("PEXPIRE", KEYS[2], ARGV[1])
return 1
