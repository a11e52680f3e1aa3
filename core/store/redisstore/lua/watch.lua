-- watch.lua: add an inbox to the waiters of an operation, or deliver its
-- note at once if it has finished (Watch).
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12]      the operation hash
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       unit
-- ARGV[8]       path
-- ARGV[9]       inbox
--
-- Returns 1, -1 if the operation does not exist, -3 if it is malformed.

local u, p, inbox = ARGV[7], ARGV[8], ARGV[9]
local o, bad = load(KEYS[12])
if bad then return -3 end
if not o then return -1 end
if o.s >= SUCCEEDED then
  notify(inbox, finishedNote(KEYS[12], u, p, o.s))
else
  addWaiter(KEYS[12], o, inbox)
end
flush()
return 1
