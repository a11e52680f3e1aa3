-- repair.lua: find and mend what no single failure should leave behind but
-- a bug or a partial restore might (Repair), a bounded amount per call:
--
--   stale-queue-entry  a ready, delayed or running entry whose operation is
--                      missing or not in that state: removed
--   orphan-lease       a lease that ends after its holder's last promise in
--                      the alive registry (no live worker holds it): taken
--                      back at once, as if it had lapsed
--   counter-behind     the lease id or queue sequence counter below a value
--                      already handed out: moved past it
--
-- Notes for an inbox nobody reads are found by the caller (SCAN), not here.
--
-- KEYS[1..11]   globals, see lib.lua
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       max lapses in a row without progress
-- ARGV[8]       error type of an operation that lapsed too often
-- ARGV[9]       max entries to look at per queue
-- ARGV[10]      ms: if > 0, do nothing when another call ran within this
--               long (many processes share a namespace; one check per
--               period is enough)
--
-- Returns {repairs, lapses, ran}: repairs is flat, 3 values each (kind, the
-- operation's "<unit>:<path>" or "", detail); lapses as lapse() reports;
-- ran is 0 when the call did nothing because of ARGV[10].

local maxLapses = tonumber(ARGV[7])
local lostType = ARGV[8]
local cap = tonumber(ARGV[9])
local gap = tonumber(ARGV[10])
if gap > 0 and not redis.call("SET", P .. "repairing", "1", "NX", "PX", gap) then
  return {{}, {}, 0}
end
local repairs = {}
local function repaired(kind, id, detail)
  repairs[#repairs + 1] = kind
  repairs[#repairs + 1] = id
  repairs[#repairs + 1] = detail
end

local maxSeq = 0
for lane = 0, 1 do
  for _, m in ipairs(redis.call("ZRANGE", READY[lane + 1], 0, cap - 1)) do
    local q, id = string.sub(m, 1, 12), string.sub(m, 13)
    local o = load(opkey(id))
    if not o or o.s ~= PENDING or o.q ~= q then
      redis.call("ZREM", READY[lane + 1], m)
      repaired("stale-queue-entry", id, "ready:" .. lane .. " held an entry for an operation that is " ..
        (o and STATUS[o.s] or "missing"))
    else
      maxSeq = math.max(maxSeq, tonumber(q, 16) or 0)
    end
  end
  for _, id in ipairs(redis.call("ZRANGE", DELAYED[lane + 1], 0, cap - 1)) do
    local o = load(opkey(id))
    if not o or o.s ~= PENDING then
      redis.call("ZREM", DELAYED[lane + 1], id)
      repaired("stale-queue-entry", id, "delayed:" .. lane .. " held an entry for an operation that is " ..
        (o and STATUS[o.s] or "missing"))
    end
  end
end

local maxLease = 0
local orphans = {}
for lane = 0, 1 do
  local entries = redis.call("ZRANGE", RUNNING_Z[lane + 1], 0, cap - 1, "WITHSCORES")
  for j = 1, #entries, 2 do
    local id, leaseEnd = entries[j], tonumber(entries[j + 1])
    local key = opkey(id)
    local o = load(key)
    if not o or o.s ~= RUNNING then
      redis.call("ZREM", RUNNING_Z[lane + 1], id)
      repaired("stale-queue-entry", id, "running:" .. lane .. " held an entry for an operation that is " ..
        (o and STATUS[o.s] or "missing"))
    else
      maxLease = math.max(maxLease, tonumber(o.i or 0) or 0)
      local promised = tonumber(redis.call("ZSCORE", ALIVE, o.k or "") or -1)
      if leaseEnd >= NOW and leaseEnd > promised then
        orphans[#orphans + 1] = {key, id, lane, o, leaseEnd, promised}
      end
    end
  end
end

-- Counters first: taking back an orphan queues it with the next sequence.
local lease = tonumber(redis.call("GET", LEASE) or 0) or 0
if maxLease > lease then
  redis.call("SET", LEASE, maxLease)
  repaired("counter-behind", "", string.format("lease counter was %d, below lease %d already handed out", lease, maxLease))
end
local seq = tonumber(redis.call("GET", SEQ) or 0) or 0
if maxSeq > seq then
  redis.call("SET", SEQ, maxSeq)
  repaired("counter-behind", "", string.format("sequence counter was %d, below %d already queued", seq, maxSeq))
end

for _, x in ipairs(orphans) do
  local key, id, lane, o = x[1], x[2], x[3], x[4]
  lapse(key, id, lane, o, maxLapses, lostType)
  repaired("orphan-lease", id, string.format(
    "%s held by %q until %d, but that worker was never promised a lease past %d: taken back",
    o.n, o.k or "", x[5], x[6]))
end

-- The alive registry only needs entries that could still back a lease.
redis.call("ZREMRANGEBYSCORE", ALIVE, "-inf", "(" .. (NOW - 86400000))
flush()
return {repairs, LAPSES, 1}
