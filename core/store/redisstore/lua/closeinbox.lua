-- closeinbox.lua: drop an inbox and its notes (CloseInbox). An empty
-- string is left in the notes list for a short while: it wakes a Pop that
-- is blocked on the list, which then finds the inbox gone.
--
-- KEYS[1]       the inbox registration
-- KEYS[2]       the inbox's notes
-- ARGV[1]       how long the wake-up marker may linger, ms
--
-- Returns 1.

redis.call("DEL", KEYS[1], KEYS[2])
redis.call("RPUSH", KEYS[2], "")
redis.call("PEXPIRE", KEYS[2], ARGV[1])
return 1
