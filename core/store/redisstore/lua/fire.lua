-- fire.lua: claim one tick of a schedule and submit its run, as one step
-- (FireTick). scripts.go puts lib.lua in front of this file and submit.lua's
-- source in place of the @submit line below, wrapped in a function, so the
-- run is submitted exactly as Submit would submit it.
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12]      the run's root operation hash (submit.lua's item 0)
-- KEYS[13]      the run's unit index
-- KEYS[14]      the root's operation hash again (a root is its own parent key)
-- KEYS[15]      the schedule's HASH {ns}:sched:<name> (fields in keys.go)
-- KEYS[16]      the SET of schedule names {ns}:scheds
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7..]     submit.lua's arguments for one item: count 1, history flag,
--               then the run's root (its unit is ARGV[9])
-- the last 8    name, workflow, spec, tz, tick ms, next tick ms, overlap
--               ("1": run even if the previous run goes on), keep ms (the
--               record's TTL)
--
-- Returns {outcome, previous tick ms, unit, code, detail}: outcome "taken"
-- (claimed already, or not after the schedule's creation), "paused",
-- "overlap" (unit: the run still going), "fired" (unit: the run
-- submitted; code: submit's outcome 1, 2 or 3) or "refused" (code and
-- detail: submit's negative code and its detail; the tick stays claimed).

local SA = #ARGV - 7
local sname, swf, sspec, stz = ARGV[SA], ARGV[SA + 1], ARGV[SA + 2], ARGV[SA + 3]
local tick, nextTick = tonumber(ARGV[SA + 4]), ARGV[SA + 5]
local overlap = ARGV[SA + 6] == "1"
local keep = tonumber(ARGV[SA + 7])
local SK, SNAMES = KEYS[15], KEYS[16]

local cur = redis.call("HMGET", SK, "t", "p", "u", "c")
local prev = tonumber(cur[1]) or 0
local created = tonumber(cur[4])
-- Whatever the outcome, the record says who serves it and what comes next.
redis.call("HSET", SK, "w", swf, "s", sspec, "z", stz, "n", nextTick, "e", NOW)
if not created then
  created = NOW
  redis.call("HSET", SK, "c", created)
end
redis.call("PEXPIRE", SK, keep)
redis.call("SADD", SNAMES, sname)

if tick <= prev or tick <= created then return {"taken", prev, "", 0, ""} end
redis.call("HSET", SK, "t", tick)
if cur[2] == "1" then return {"paused", prev, "", 0, ""} end
if not overlap and cur[3] then
  local st = tonumber(redis.call("HGET", P .. "o:" .. cur[3] .. ":" .. ROOT, "s"))
  if st and st < SUCCEEDED then
    redis.call("HINCRBY", SK, "S", 1)
    return {"overlap", prev, cur[3], 0, ""}
  end
end

local submitted = (function()
--@submit
end)()

local r = submitted[1]
if r[1] > 0 then
  redis.call("HSET", SK, "u", ARGV[9], "f", NOW)
  redis.call("HINCRBY", SK, "F", 1)
  return {"fired", prev, ARGV[9], r[1], ""}
end
return {"refused", prev, ARGV[9], r[1], r[2] or ""}
