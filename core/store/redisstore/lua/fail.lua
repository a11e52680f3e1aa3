-- fail.lua: fail a running operation on behalf of its holder or the system,
-- honoring retries; the holder is told to stop (Fail).
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12]      the operation hash
-- KEYS[13]      its unit index
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       unit
-- ARGV[8]       path
-- ARGV[9]       lease id
-- ARGV[10]      encoded error
-- ARGV[11]      retry delay ms computed in Go (Backoff)
--
-- Returns 1 recorded, 2 retrying, 3 stale.

local u, p, lease, err = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local o = held(KEYS[12], "", lease)
if not o then return STALE end
local holder = o.k
crumb(u, p, "timeout", errorText(err))
local out = failAttempt(KEYS[12], u, p, o, err, false, tonumber(ARGV[11]))
notify(holder, note(NOTE_CANCEL, u, p, FAILED, "", lease, err))
flush()
return out
