-- schedpause.lua: pause or resume a schedule (PauseSchedule).
--
-- KEYS[1]   the schedule's HASH {ns}:sched:<name>
-- ARGV[1]   "1" to pause, "0" to resume
--
-- Returns 1, or 0 when no such schedule exists (never registered, or
-- expired).

if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("HSET", KEYS[1], "p", ARGV[1])
return 1
