-- lib.lua: helpers shared by the scripts that change operations. scripts.go
-- puts this file in front of each of them before loading it, so they all
-- start with the same KEYS and ARGV, documented here once:
--
-- KEYS[1], KEYS[2]   ready ZSET of lane 0 (async) and lane 1 (blocking)
-- KEYS[3], KEYS[4]   delayed ZSET of lanes 0 and 1 (score: due ms)
-- KEYS[5], KEYS[6]   running ZSET of lanes 0 and 1 (score: lease end ms)
-- KEYS[7]            seq counter (FIFO order inside a priority)
-- KEYS[8]            lease id counter
-- KEYS[9], KEYS[10]  signal LIST of lanes 0 and 1 (wakes blocked Reserve)
-- KEYS[11]           dead ZSET (failed units by finish ms)
-- ARGV[1]            key prefix "{<ns>}:"
-- ARGV[2]            now, unix ms, from the store's clock (never Redis TIME,
--                    so that a test clock drives every timestamp)
-- ARGV[3]            TTL ms of the keys of an unfinished unit
-- ARGV[4]            TTL ms of the keys of a succeeded unit
-- ARGV[5]            TTL ms of the keys of a failed or cancelled unit
-- ARGV[6]            TTL ms of an inbox that nobody reads
--
-- Two more keys of the namespace are built from ARGV[1] rather than passed,
-- so that adding them left every script's numbering alone:
--   P.."alive"       ZSET   worker -> the latest lease end it was promised
--                           (Reserve, Renew); a lease that ends later than
--                           its holder's entry has no live holder
--   P.."runs"        STREAM one entry per run, at its creation ms, field u =
--                           the unit (the index of runs; a stream entry
--                           takes a fraction of a sorted set's memory)
--   P.."bc:"..unit   LIST   the run's stored breadcrumbs (crumb below)
--   P.."bcd:"..unit  STRING how many of them were dropped past the bound
--
-- Keys found while running (the operation a queue pops, the inboxes of
-- waiters and holders, descendants of a finished operation) are built from
-- ARGV[1]; they share its hash tag, hence the slot (see keys.go).
-- Notes and lane signals are buffered and written once per inbox and lane
-- by flush(), which every script calls before it returns.

local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local PENDING_TTL = tonumber(ARGV[3])
local SUCCEEDED_TTL = tonumber(ARGV[4])
local FAILED_TTL = tonumber(ARGV[5])
local INBOX_TTL = tonumber(ARGV[6])

local READY = {KEYS[1], KEYS[2]}
local DELAYED = {KEYS[3], KEYS[4]}
local RUNNING_Z = {KEYS[5], KEYS[6]}
local SEQ = KEYS[7]
local LEASE = KEYS[8]
local SIGNAL = {KEYS[9], KEYS[10]}
local DEAD = KEYS[11]
local ALIVE = P .. "alive"
local RUNS = P .. "runs"
-- The store's own breadcrumbs per run are bounded here (the user's by the
-- configured maximum, in addbc.lua).
local CRUMBS_MAX = 10000

local PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = 1, 2, 3, 4, 5
local STATUS = {"pending", "running", "succeeded", "failed", "cancelled"}
local NOTE_FINISHED, NOTE_CANCEL = 1, 2
local RECORDED, RETRYING, STALE = 1, 2, 3
local ROOT = "0"
local CANCEL_TYPE = "blazing.errors.RunCancelled"
-- A blocked Reserve is woken by one token; more than this many waiters per
-- lane are woken by the next change or their own wait running out.
local SIGNAL_MAX = 64
local SIGNAL_TTL = 60000
local MSGPACK_NIL = "\192"

-- The fields load() reads, in order.
local FIELDS = {"s", "l", "k", "i", "q", "w", "K", "P", "t", "R", "n", "x"}
-- The fields an attempt's progress is judged by (see progressed).
local PROGRESS_FIELDS = {"b", "v"}

local function opkey(id) return P .. "o:" .. id end

-- crumb adds one of the store's own breadcrumbs (what an operation's record
-- does not show: retries, lapses, timeouts, replays) to the run's timeline,
-- an msgpack array {at ms, path, kind, message}, living as long as the run.
-- errorText reads "type: message" from an encoded error (a msgpack array
-- whose first two items are strings). It reads those two by hand: the
-- payload that may follow is binary, which Redis' cmsgpack cannot decode.
local function errorText(err)
  if not err or #err < 1 then return "an error" end
  local pos = 1
  local b = string.byte(err, pos)
  if b >= 0x90 and b <= 0x9f then pos = pos + 1
  elseif b == 0xdc then pos = pos + 3
  elseif b == 0xdd then pos = pos + 5
  else return "an error" end
  local parts = {}
  for i = 1, 2 do
    b = string.byte(err, pos)
    local n
    if not b then return "an error"
    elseif b >= 0xa0 and b <= 0xbf then n = b - 0xa0; pos = pos + 1
    elseif b == 0xd9 then n = string.byte(err, pos + 1); pos = pos + 2
    elseif b == 0xda then n = string.byte(err, pos + 1) * 256 + string.byte(err, pos + 2); pos = pos + 3
    elseif b == 0xdb then
      n = ((string.byte(err, pos + 1) * 256 + string.byte(err, pos + 2)) * 256 +
        string.byte(err, pos + 3)) * 256 + string.byte(err, pos + 4)
      pos = pos + 5
    else return "an error" end
    parts[i] = string.sub(err, pos, pos + n - 1)
    pos = pos + n
  end
  return parts[1] .. ": " .. string.sub(parts[2], 1, 200)
end

local function crumb(u, p, kind, msg)
  local k = P .. "bc:" .. u
  local n = redis.call("RPUSH", k, cmsgpack.pack({NOW, p, kind, msg}))
  if n > CRUMBS_MAX then
    redis.call("LTRIM", k, n - CRUMBS_MAX, -1)
    redis.call("INCRBY", P .. "bcd:" .. u, n - CRUMBS_MAX)
  end
  local ttl = redis.call("PTTL", P .. "u:" .. u)
  if ttl <= 0 then ttl = PENDING_TTL end
  redis.call("PEXPIRE", k, ttl)
end

-- load reads the fields of an operation that scripts decide on. It returns
-- nil for a missing operation and nil, true for a malformed one (wrong key
-- type, unknown status or lane), which callers treat as missing so that one
-- damaged record never aborts a batch.
local function load(key)
  local ok, v = pcall(redis.call, "HMGET", key, unpack(FIELDS))
  if not ok then return nil, true end
  if not v[1] then return nil end
  local s = tonumber(v[1])
  local l = tonumber(v[2] or 0)
  if not s or s < PENDING or s > CANCELLED or s % 1 ~= 0 or (l ~= 0 and l ~= 1) then
    return nil, true
  end
  return {
    s = s, l = l, k = v[3] or "", i = v[4], q = v[5], w = v[6], K = v[7],
    P = tonumber(v[8] or 0) or 0, t = tonumber(v[9] or 0) or 0,
    R = tonumber(v[10] or 0) or 0, n = v[11] or "", x = tonumber(v[12] or 0) or 0,
  }
end

-- held returns the operation if it runs under lease (and, when worker is not
-- "", is held by worker).
local function held(key, worker, lease)
  local o = load(key)
  if o and o.s == RUNNING and o.i == lease and (worker == "" or o.k == worker) then
    return o
  end
  return nil
end

local seqNext, seqLast = 1, 0
-- SEQ_BLOCK is how many sequence numbers one INCRBY reserves; a script that
-- knows how many it will need sets it first. Unused ones are skipped.
local SEQ_BLOCK = 16
local function nextseq()
  if seqNext > seqLast then
    seqLast = redis.call("INCRBY", SEQ, SEQ_BLOCK)
    seqNext = seqLast - SEQ_BLOCK + 1
  end
  local s = seqNext
  seqNext = s + 1
  return s
end

local WAKE = {0, 0}

-- enqueue makes an operation ready: priority first, then FIFO through the
-- 12 hex digit sequence prefix of the member. Extra field/value pairs are
-- written with the status.
local function enqueue(key, id, lane, pri, ...)
  local q = string.format("%012x", nextseq())
  redis.call("ZADD", READY[lane + 1], -pri, q .. id)
  redis.call("HSET", key, "s", PENDING, "q", q, "y", NOW, ...)
  WAKE[lane + 1] = WAKE[lane + 1] + 1
end

local OUT, OUT_ORDER, OPEN = {}, {}, {}

-- notify queues a note for an inbox that is open; notes for others are
-- dropped, as nobody will read them.
local function notify(name, n)
  if not name or name == "" then return end
  local open = OPEN[name]
  if open == nil then
    open = redis.call("EXISTS", P .. "in:" .. name) == 1
    OPEN[name] = open
  end
  if not open then return end
  local q = OUT[name]
  if not q then
    q = {}
    OUT[name] = q
    OUT_ORDER[#OUT_ORDER + 1] = name
  end
  q[#q + 1] = n
end

-- note encodes a Note as a run of msgpack values (see notes.go): kind, unit,
-- path, status, result, lease id, then the encoded error or nil.
local function note(kind, u, p, st, result, lease, err)
  return cmsgpack.pack(kind, u, p, st, result or "", tonumber(lease) or 0) .. (err or MSGPACK_NIL)
end

local function errinfo(typ, msg)
  return cmsgpack.pack({typ, msg})
end

local function cancelInfo(reason)
  return errinfo(CANCEL_TYPE, reason)
end

local function finishedNote(key, u, p, st)
  local v = redis.call("HMGET", key, "r", "e")
  return note(NOTE_FINISHED, u, p, st, v[1], 0, v[2] or nil)
end

local function waiters(o)
  if not o.w then return {} end
  local ok, ws = pcall(cmsgpack.unpack, o.w)
  if ok and type(ws) == "table" then return ws end
  return {}
end

local function addWaiter(key, o, inbox)
  if inbox == "" then return end
  local ws = waiters(o)
  for _, w in ipairs(ws) do
    if w == inbox then return end
  end
  ws[#ws + 1] = inbox
  o.w = cmsgpack.pack(ws)
  redis.call("HSET", key, "w", o.w)
end

local UNITS = {}

-- unitIndex returns the unit's HGETALL (path, parent, path, parent, ...),
-- read once per script.
local function unitIndex(u)
  local idx = UNITS[u]
  if not idx then
    local ok, v = pcall(redis.call, "HGETALL", P .. "u:" .. u)
    idx = ok and v or {}
    UNITS[u] = idx
  end
  return idx
end

-- setTTL gives every key of a unit the same remaining life.
local function setTTL(u, ttl)
  local idx = unitIndex(u)
  for i = 1, #idx, 2 do
    redis.call("PEXPIRE", P .. "o:" .. u .. ":" .. idx[i], ttl)
  end
  redis.call("PEXPIRE", P .. "u:" .. u, ttl)
  redis.call("PEXPIRE", P .. "bc:" .. u, ttl)
  redis.call("PEXPIRE", P .. "bcd:" .. u, ttl)
end

local finish

-- cancelKids cancels the unfinished operations that the operation at path p
-- called; finish recurses into theirs. Kids are found by the parent stored
-- in the unit index, never by string prefix ("0.1" is not the parent of
-- "0.10").
local function cancelKids(u, p, st)
  local idx = unitIndex(u)
  local info
  for i = 1, #idx, 2 do
    if idx[i + 1] == p then
      local path = idx[i]
      local key = P .. "o:" .. u .. ":" .. path
      local o = load(key)
      if o and o.s < SUCCEEDED then
        info = info or cancelInfo("its caller " .. u .. "/" .. p .. " finished " .. STATUS[st])
        finish(key, u, path, o, CANCELLED, nil, info)
      end
    end
  end
end

-- finish makes an operation terminal: out of its queue, waiters told, its
-- holder told if it was cancelled while running, what it called and left
-- unfinished cancelled, and, for a root, the whole unit given its retention.
finish = function(key, u, p, o, st, result, err)
  local id = u .. ":" .. p
  local was = o.s
  if was == PENDING then
    if o.q then redis.call("ZREM", READY[o.l + 1], o.q .. id) end
    redis.call("ZREM", DELAYED[o.l + 1], id)
  elseif was == RUNNING then
    redis.call("ZREM", RUNNING_Z[o.l + 1], id)
  end
  local f = {"s", st, "f", NOW}
  if result and result ~= "" then
    f[#f + 1] = "r"
    f[#f + 1] = result
  end
  if err then
    f[#f + 1] = "e"
    f[#f + 1] = err
  end
  redis.call("HSET", key, unpack(f))
  redis.call("HDEL", key, "i", "q", "y", "w", "v")
  o.s = st
  if st == CANCELLED and was == RUNNING then
    notify(o.k, note(NOTE_CANCEL, u, p, st, "", o.i, err))
  end
  local ws = waiters(o)
  if #ws > 0 then
    local n = note(NOTE_FINISHED, u, p, st, result, 0, err)
    for _, w in ipairs(ws) do notify(w, n) end
  end
  o.w = nil
  if o.K then cancelKids(u, p, st) end
  if p == ROOT then
    if st == SUCCEEDED then
      setTTL(u, SUCCEEDED_TTL)
    else
      setTTL(u, FAILED_TTL)
    end
    if st == FAILED then redis.call("ZADD", DEAD, NOW, u) end
  end
end

-- failAttempt records a failed attempt of a running operation, retrying it
-- if allowed. delay is the backoff Go computed for this attempt.
local function failAttempt(key, u, p, o, err, noRetry, delay)
  if not noRetry and o.t <= o.R then
    crumb(u, p, "retry", string.format("attempt %d on %s failed: %s; retry in %d ms", o.t, o.k or "?",
      errorText(err), delay))
    local id = u .. ":" .. p
    redis.call("ZREM", RUNNING_Z[o.l + 1], id)
    if delay > 0 then
      redis.call("ZADD", DELAYED[o.l + 1], NOW + delay, id)
      redis.call("HSET", key, "s", PENDING, "e", err)
    else
      enqueue(key, id, o.l, o.P, "e", err)
    end
    return RETRYING
  end
  finish(key, u, p, o, FAILED, nil, err)
  return RECORDED
end

-- What lapse() did, for the caller's report: 6 values per lapse (id, name,
-- holder, lapses in a row without progress, 1 if it progressed, 1 if it was
-- failed), at most LAPSE_REPORT_MAX lapses.
local LAPSES = {}

-- alive records the latest lease end promised to a worker (Reserve, Renew).
local function alive(worker, leaseEnd)
  redis.call("ZADD", ALIVE, "GT", leaseEnd, worker)
  redis.call("PEXPIRE", ALIVE, PENDING_TTL)
end
local LAPSE_REPORT_MAX = 100

-- progressed reports whether the attempt of running operation o (at key,
-- unit u, path p) that lost its lease made progress: its lease was renewed
-- (a heartbeat saw it at work), a call it made was created or finished
-- during the attempt, or it was waiting on a call it made when its worker
-- went (parked, not running code, so not what killed the worker).
local function progressed(key, u, p, o)
  local v = redis.call("HMGET", key, unpack(PROGRESS_FIELDS))
  local started = tonumber(v[1] or 0) or 0
  local renewed = tonumber(v[2] or 0) or 0
  if renewed > 0 and renewed >= started then return true end
  if not o.K then return false end
  local idx = unitIndex(u)
  for i = 1, #idx, 2 do
    if idx[i + 1] == p then
      local kv = redis.call("HMGET", P .. "o:" .. u .. ":" .. idx[i], "s", "c", "f")
      local ks = tonumber(kv[1] or 0) or 0
      if ks == PENDING or ks == RUNNING then return true end
      if (tonumber(kv[2] or 0) or 0) >= started or (tonumber(kv[3] or 0) or 0) >= started then
        return true
      end
    end
  end
  return false
end

-- lapse takes back the lease of running operation o (key, "<unit>:<path>"
-- id, lane) whose holder is gone: it is queued again, or failed with
-- lostType once it has lapsed more than maxLapses times in a row without
-- progress (it keeps killing its workers).
local function lapse(key, id, lane, o, maxLapses, lostType)
  local u, p = string.match(id, "^(.*):([^:]*)$")
  local progress = progressed(key, u, p, o)
  local lapses = 0
  if progress then
    redis.call("HDEL", key, "x")
  else
    lapses = redis.call("HINCRBY", key, "x", 1)
  end
  crumb(u, p, "lapse", string.format("lease taken back from %s (gone or cut off); lapse %d in a row without progress",
    o.k or "?", lapses))
  local failed = lapses > maxLapses
  if failed then
    finish(key, u, p, o, FAILED, nil, errinfo(lostType, string.format(
      "%s (%s/%s): its worker stopped renewing the lease %d times in a row without progress; not handing it out again",
      o.n, u, p, lapses)))
  else
    redis.call("ZREM", RUNNING_Z[lane + 1], id)
    enqueue(key, id, lane, o.P)
  end
  if #LAPSES < 6 * LAPSE_REPORT_MAX then
    local n = #LAPSES
    LAPSES[n + 1], LAPSES[n + 2], LAPSES[n + 3] = id, o.n, o.k or ""
    LAPSES[n + 4], LAPSES[n + 5], LAPSES[n + 6] = lapses, progress and 1 or 0, failed and 1 or 0
  end
end

-- promote moves due delayed retries of both lanes to ready, at most max per
-- lane (the rest on the next call).
local function promote(max)
  local n = 0
  for lane = 0, 1 do
    local due = redis.call("ZRANGEBYSCORE", DELAYED[lane + 1], "-inf", NOW, "LIMIT", 0, max)
    for _, id in ipairs(due) do
      redis.call("ZREM", DELAYED[lane + 1], id)
      local key = opkey(id)
      local o = load(key)
      if o and o.s == PENDING then
        enqueue(key, id, lane, o.P)
        n = n + 1
      end
    end
  end
  return n
end

-- flush writes the buffered notes (one RPUSH per inbox and 1000 notes) and
-- lane signals.
local function flush()
  for _, name in ipairs(OUT_ORDER) do
    local k = P .. "nt:" .. name
    local q = OUT[name]
    for i = 1, #q, 1000 do
      redis.call("RPUSH", k, unpack(q, i, math.min(i + 999, #q)))
    end
    redis.call("PEXPIRE", k, INBOX_TTL)
  end
  OUT, OUT_ORDER = {}, {}
  for lane = 1, 2 do
    local n = WAKE[lane]
    if n > 0 then
      if n > SIGNAL_MAX then n = SIGNAL_MAX end
      local t = {}
      for i = 1, n do t[i] = "1" end
      redis.call("RPUSH", SIGNAL[lane], unpack(t))
      redis.call("LTRIM", SIGNAL[lane], -SIGNAL_MAX, -1)
      redis.call("PEXPIRE", SIGNAL[lane], SIGNAL_TTL)
      WAKE[lane] = 0
    end
  end
end

-- Every script's own part follows.
