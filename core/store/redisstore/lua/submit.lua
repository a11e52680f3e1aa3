-- submit.lua: create operations, or join/replay existing ones (Submit).
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12+3i]   item i (0-based): its operation hash
-- KEYS[13+3i]   item i: its unit index
-- KEYS[14+3i]   item i: its parent's operation hash (its own for a root)
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       number of items
-- ARGV[8]       "1" to add new runs to the index of runs (history on)
-- ARGV[9..]     per item: unit, path, parent ("" for a root), name, lane,
--               priority, inbox ("" for none), n, then n strings: the other
--               field/value pairs of a new operation hash (see keys.go)
--
-- Returns, per item, {1} created, {2} joined, {3} replayed, {-1, name}
-- conflict with the existing name, {-2} parent not found, {-3} malformed
-- record in the way.

local count = tonumber(ARGV[7])
local history = ARGV[8] == "1"
SEQ_BLOCK = math.max(1, math.min(count, 512))
local out = {}
local unitTTL = {}
-- What this script knows of the operations it read or made, by key: the
-- status and the "has called" flag, so that many calls of one caller cost
-- one read of it.
local known = {}
local function peekParent(key)
  local p = known[key]
  if p == nil then
    local ok, v = pcall(redis.call, "HMGET", key, "s", "K")
    local s = ok and tonumber(v[1])
    if not ok or (v[1] and (not s or s < PENDING or s > CANCELLED)) then
      p = {bad = true}
    elseif not v[1] then
      p = false
    else
      p = {s = s, K = v[2]}
    end
    known[key] = p
  end
  return p
end

-- indexRun adds a new run to the index of runs at NOW (or just after the
-- newest entry, should another process's clock be ahead: stream ids only
-- grow).
local lastRunMs
local function indexRun(u)
  if not lastRunMs then
    local top = redis.call("XREVRANGE", RUNS, "+", "-", "COUNT", 1)
    lastRunMs = 0
    if top[1] then lastRunMs = tonumber(string.match(top[1][1], "^(%d+)")) end
  end
  lastRunMs = math.max(NOW, lastRunMs)
  redis.call("XADD", RUNS, lastRunMs .. "-*", "u", u)
end

local a = 9
for i = 0, count - 1 do
  local key, ukey, pkey = KEYS[12 + 3 * i], KEYS[13 + 3 * i], KEYS[14 + 3 * i]
  local u, p, parent, name = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local lane, pri, inbox = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), ARGV[a + 6]
  local nf = tonumber(ARGV[a + 7])
  local f0 = a + 8
  a = f0 + nf

  -- The common case is a new operation: read only what deciding needs.
  local ok, v = pcall(redis.call, "HMGET", key, "n", "s", "w")
  local st = ok and tonumber(v[2])
  if not ok or (v[2] and (not st or st < PENDING or st > CANCELLED)) then
    out[i + 1] = {-3}
  elseif v[2] then
    if v[1] ~= name then
      out[i + 1] = {-1, v[1] or ""}
    elseif st >= SUCCEEDED then
      notify(inbox, finishedNote(key, u, p, st))
      if parent ~= "" then crumb(u, p, "replay", "returned its stored result to a replaying caller") end
      out[i + 1] = {3}
    else
      addWaiter(key, {w = v[3]}, inbox)
      out[i + 1] = {2}
    end
  else
    local po = false
    if parent ~= "" then po = peekParent(pkey) end
    if parent ~= "" and (not po or po.bad) then
      out[i + 1] = {po and -3 or -2}
    else
      -- Every key of a unit expires together: a new unit gets the TTL of an
      -- unfinished one, a new call inherits what its unit has left.
      local ttl = unitTTL[u]
      if not ttl then
        if parent == "" then
          ttl = PENDING_TTL
        else
          ttl = redis.call("PTTL", ukey)
          if ttl <= 0 then ttl = PENDING_TTL end
        end
        unitTTL[u] = ttl
      end
      local f = {"n", name, "c", NOW}
      for j = f0, a - 1 do f[#f + 1] = ARGV[j] end
      local w = false
      if inbox ~= "" then
        w = cmsgpack.pack({inbox})
        f[#f + 1] = "w"
        f[#f + 1] = w
      end
      redis.call("HSET", ukey, p, parent)
      local idx = UNITS[u]
      if idx then
        idx[#idx + 1] = p
        idx[#idx + 1] = parent
      end
      if po and not po.K then
        redis.call("HSET", pkey, "K", 1)
        po.K = "1"
      end
      local id = u .. ":" .. p
      if po and po.s >= SUCCEEDED then
        -- The caller is gone: nothing will ever await this call.
        redis.call("HSET", key, unpack(f))
        local no = {s = PENDING, l = lane, P = pri, w = w, k = ""}
        finish(key, u, p, no, CANCELLED, nil,
          cancelInfo("its caller " .. u .. "/" .. parent .. " had already finished"))
        known[key] = {s = CANCELLED}
        out[i + 1] = {3}
      else
        enqueue(key, id, lane, pri, unpack(f))
        known[key] = {s = PENDING}
        out[i + 1] = {1}
      end
      redis.call("PEXPIRE", key, ttl)
      if parent == "" then
        redis.call("PEXPIRE", ukey, ttl)
        if history then indexRun(u) end
      end
    end
  end
end
-- The index outlives no run it lists (set once per call, not per run).
if lastRunMs then redis.call("PEXPIRE", RUNS, PENDING_TTL) end
flush()
return out
