-- reclaimworker.lua: take back every lease one worker holds in a lane, as if
-- they had lapsed (ReclaimWorker): for a worker known to be gone. Scans the
-- lane's running ZSET a page at a time.
--
-- KEYS[1..11]   globals, see lib.lua
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       max lapses in a row without progress
-- ARGV[8]       error type of an operation that lapsed too often
-- ARGV[9]       the worker
-- ARGV[10]      lane (0 or 1)
-- ARGV[11]      offset of the page in the running ZSET
-- ARGV[12]      page size
--
-- Returns {next offset or -1 when the lane is done, moved, lapses} (lapses:
-- see lapse() in lib.lua).

local maxLapses = tonumber(ARGV[7])
local lostType = ARGV[8]
local worker = ARGV[9]
local lane = tonumber(ARGV[10])
local offset = tonumber(ARGV[11])
local count = tonumber(ARGV[12])
local page = redis.call("ZRANGE", RUNNING_Z[lane + 1], offset, offset + count - 1)
local moved = 0
for _, id in ipairs(page) do
  local key = opkey(id)
  local o = load(key)
  if o and o.s == RUNNING and o.k == worker then
    lapse(key, id, lane, o, maxLapses, lostType)
    moved = moved + 1
  end
end
flush()
local nextOffset = -1
if #page == count then nextOffset = offset + count - moved end
return {nextOffset, moved, LAPSES}
