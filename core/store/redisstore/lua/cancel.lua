-- cancel.lua: cancel one operation and what it called, or a whole unit
-- (Cancel).
--
-- KEYS[1..11]   globals, see lib.lua
-- KEYS[12]      the unit index
-- ARGV[1..6]    common header, see lib.lua
-- ARGV[7]       unit
-- ARGV[8]       path, "" for the whole unit
-- ARGV[9]       reason
--
-- Returns how many operations were cancelled, -1 for an unknown unit, -2 for
-- an unknown path.

local u, path, reason = ARGV[7], ARGV[8], ARGV[9]
if redis.call("EXISTS", KEYS[12]) == 0 then return -1 end
if path ~= "" and redis.call("HEXISTS", KEYS[12], path) == 0 then return -2 end

local idx = unitIndex(u)
local prefix = path .. "."
local targets = {}
for i = 1, #idx, 2 do
  local q = idx[i]
  if path == "" or q == path or string.sub(q, 1, #prefix) == prefix then
    local key = P .. "o:" .. u .. ":" .. q
    local o = load(key)
    if o and o.s < SUCCEEDED then
      local _, depth = string.gsub(q, "%.", "")
      targets[#targets + 1] = {q, key, o, depth}
    end
  end
end
-- Deepest first, so that every target records the caller's reason instead of
-- "its caller finished" from a cascade.
table.sort(targets, function(x, y)
  if x[4] ~= y[4] then return x[4] > y[4] end
  return x[1] < y[1]
end)
local info = cancelInfo(reason)
for _, t in ipairs(targets) do
  if t[3].s < SUCCEEDED then
    finish(t[2], u, t[1], t[3], CANCELLED, nil, info)
  end
end
flush()
return #targets
