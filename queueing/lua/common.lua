-- Shared helpers of the router (prepended to router.lua, sweep.lua and callbacks.lua by
-- queueing/store_wire.py, which loads the whole as a Redis function library, or as a script
-- where Redis has no functions). Nothing here runs at load time but definitions: each
-- call starts with begin(), which sets the call's arguments below.
-- The rules they apply are specified in queueing/routing.py; keep both in step.
-- Keys are derived from the prefix P (standalone Redis; the router is not cluster-safe).

-- this call's arguments: prefix, operation, time, JSON arguments, and whether callbacks
-- may be dialled now: CB_OK when every line is open; CB_LINES {line = open, [""] = the
-- default line's} when some are closed ("0": all closed, CB_LINES empty)
local P, OP, NOW, A, CB_OK, CB_LINES
local NULL  -- cjson.null (cjson is reachable only while a call runs)
-- seconds a callback's agent stays reserved when the store passes no cb_hold (the ring
-- timeout plus a margin: queueing.model.CALLBACK_RING_TIMEOUT_S + CALLBACK_MARGIN_S)
local CB_HOLD = 40
local FRONT_BONUS = 100
local SKILL_SCALE = 1e11
local CHUNK = 64

local function k(a, b, c, d)  -- the key P .. a .. b .. c .. d (up to four parts)
  if b == nil then return P .. a end
  if c == nil then return P .. a .. b end
  if d == nil then return P .. a .. b .. c end
  return P .. a .. b .. c .. d
end
local function fail(code, msg) return redis.error_reply(code .. ": " .. msg) end
local function num(v, d) if v == nil or v == false or v == NULL then return d end return tonumber(v) end

-- a queue's rules, read and decoded once per call (begin() empties the cache)
local RULES = {}

-- Every call starts here: its arguments (ARGV, or a function's args).
local function begin(argv)
  P, OP, NOW = argv[1], argv[2], tonumber(argv[3])
  A, CB_OK, NULL = cjson.decode(argv[4]), argv[5] == "1", cjson.null
  CB_LINES = {}
  if not CB_OK and argv[5] ~= "0" then CB_LINES = cjson.decode(argv[5]) end
  RULES = {}
end

-- May a callback that came in on line `line` (its hours_line; "" or unknown: the
-- default line) be routed and dialled now?
local function cb_open(line)
  if CB_OK then return true end
  local v = CB_LINES[line or ""]
  if v == nil then v = CB_LINES[""] end
  return v == true
end

-- Memos of pure functions of a string (decoded JSON, parsed line ids), read-only once
-- made. Loaded as a function library, the router keeps them from call to call (the text
-- is still read from Redis on every call, so a change applies at once); as a script,
-- they last one call. Each is emptied when it reaches MEMO_MAX entries.
local MEMO_MAX = 4096
local function memo()
  local m = {entries = {}, n = 0}
  function m.put(key, value)
    if m.n >= MEMO_MAX then m.entries, m.n = {}, 0 end
    m.entries[key], m.n = value, m.n + 1
    return value
  end
  return m
end
local DECODED, METAS, PARTS, SKILLS = memo(), memo(), memo(), memo()

-- a line's metadata {q, p, s, f, b}: written once, when the line is first used, and
-- all of it spelt in the line id (queue|skill=level,...#[f]priority), so a memo by id
-- holds whatever Redis it came from
local function meta(lid)
  return METAS.entries[lid] or METAS.put(lid, cjson.decode(redis.call("HGET", k("linemeta"), lid)))
end

-- an agent's skills {skill = level} from their JSON text
local function skills_of(raw)
  return SKILLS.entries[raw] or SKILLS.put(raw, cjson.decode(raw))
end

local function decode_rules(raw)
  local r = raw and DECODED.entries[raw]
  if r then return r end
  if raw then r = cjson.decode(raw) else
    r = {reservation_timeout_s = 20, wrap_up_s = 30, service_level_s = 20, steps = {},
         agent_order = "most_skilled", head_start_s = {}, callback_max_attempts = 3,
         callback_retry_s = 120, resume_window_s = 300, offer_callback_after_s = 120}
  end
  -- the most aging can raise a call's priority: bounds a line's best rank unread
  local most = 0
  for _, st in ipairs(r.steps) do
    if (st.raise_priority or 0) > 0 then most = most + st.raise_priority end
  end
  r.max_boost = most
  if raw then DECODED.put(raw, r) end
  return r
end

local function rules(queue)
  local r = RULES[queue]
  if r then return r end
  local both = redis.call("HMGET", k("rules"), queue, "*")
  r = decode_rules(both[1] or both[2] or nil)
  RULES[queue] = r
  return r
end

-- (relaxed level or nil, priority boost, overflow queue or nil, offer voicemail)
local function aging(r, wait)
  local level, boost, overflow, vm = nil, 0, nil, false
  for _, st in ipairs(r.steps) do
    if wait >= st.after_s then
      if st.min_level ~= NULL and st.min_level ~= nil then
        if level == nil or st.min_level < level then level = st.min_level end
      end
      boost = boost + (st.raise_priority or 0)
      if st.overflow_to ~= NULL and st.overflow_to ~= nil then overflow = st.overflow_to end
      if st.offer_voicemail then vm = true end
    end
  end
  return level, boost, overflow, vm
end

local function event(kind, fields)
  local args = {k("events"), "MAXLEN", "~", "10000", "*", "type", kind, "at", tostring(NOW)}
  for name, value in pairs(fields) do args[#args + 1] = name; args[#args + 1] = tostring(value) end
  redis.call("XADD", unpack(args))
end

-- ---------------------------------------------------------------- agents

local AFIELDS = {"skills", "capacity", "queues", "state", "load", "calls", "idle_since"}
local function load_agent(aid)
  local v = redis.call("HMGET", k("agent:", aid), unpack(AFIELDS))
  if not v[1] then return nil end
  local ag = {id = aid, skills = skills_of(v[1]), capacity = tonumber(v[2]),
              queues = {}, nqueues = 0, state = v[4], load = tonumber(v[5] or "0"),
              calls = cjson.decode(v[6] or "[]"), idle = num(v[7], 0)}
  for _, q in ipairs(cjson.decode(v[3] or "[]")) do ag.queues[q] = true; ag.nqueues = ag.nqueues + 1 end
  return ag
end

local function taking(ag)
  return (ag.state == "available" or ag.state == "reserved" or ag.state == "busy")
    and ag.load < ag.capacity
end

local function serves(ag, queue) return ag.nqueues == 0 or ag.queues[queue] == true end

local function add_free(ag)
  ag.not_free = nil
  redis.call("ZADD", k("free"), ag.idle, ag.id)
  for s, l in pairs(ag.skills) do redis.call("ZADD", k("free:", s), -l * SKILL_SCALE + ag.idle, ag.id) end
end

-- (an agent is in the free set exactly when it is in the per-skill ones: one ZREM says;
-- ag.not_free: known not to be in it, nothing to ask)
local function rem_free(ag)
  if ag.not_free then return end
  if redis.call("ZREM", k("free"), ag.id) == 0 then return end
  for s, _ in pairs(ag.skills) do redis.call("ZREM", k("free:", s), ag.id) end
end

-- ...: more fields of the agent's hash to write in the same HSET. put_agent_state writes
-- no event of its own: the call's event that caused it says the agent's new state
-- (field agent_state), one stream entry instead of two.
local function put_agent_state(ag, state, reason, ...)
  ag.state = state
  redis.call("HSET", k("agent:", ag.id), "state", state, "reason", reason or "", "state_since", NOW, ...)
end

local function set_agent_state(ag, state, reason, ...)
  put_agent_state(ag, state, reason, ...)
  event("agent", {agent = ag.id, state = state, reason = reason or ""})
end

-- the agent's hash fields of its calls ("[]" when none: cjson writes {} for an empty table)
local function load_fields(ag)
  return "load", ag.load, "calls", #ag.calls == 0 and "[]" or cjson.encode(ag.calls)
end

-- take call cid off agent ag in memory only (false: ag did not have it); see drop_call
local function unassign(ag, cid)
  local kept = {}
  for _, c in ipairs(ag.calls) do if c ~= cid then kept[#kept + 1] = c end end
  if #kept == #ag.calls then return false end
  ag.calls = kept
  ag.load = #kept
  return true
end

local function drop_call(ag, cid)
  if not unassign(ag, cid) then return false end
  redis.call("HSET", k("agent:", ag.id), load_fields(ag))
  return true
end

-- ---------------------------------------------------------------- calls and lines

local function load_call(cid)
  local h = redis.call("HGETALL", k("call:", cid))
  if #h == 0 then return nil end
  local c = {}
  for i = 1, #h, 2 do c[h[i]] = h[i + 1] end
  c.id = cid
  c.score = tonumber(c.score); c.prio = tonumber(c.prio); c.entered_at = tonumber(c.entered_at)
  c.needs = cjson.decode(c.needs)
  return c
end

-- A callback waits in a line of its own kind, per line whose hours it keeps
-- ("...@support#0"; its metadata's h says which, exactly), so a line closed for
-- callbacks is passed over whole (one check) instead of member by member; it keeps its
-- place by its score, as in any line. (Every line id still ends in #[f]priority.)
local function line_of(c, front)
  local lid = c.bucket
  if c.cb and c.cb ~= "" then lid = lid .. "@" .. (c.hours_line or "") end
  return lid .. "#" .. (front and "f" or "") .. c.prio
end

-- Lines an agent may serve are indexed per agent: acand1 (skills at the required levels
-- and the queue: no check needed) and acand0 (all the skills, but only after relaxing
-- levels or through overflow: checked against the rules at decision time).
local function qualify(ag, m)
  for s, _ in pairs(m.s) do if not ag.skills[s] then return nil end end
  if not serves(ag, m.q) then return 0 end
  for s, l in pairs(m.s) do if ag.skills[s] < l then return 0 end end
  return 1
end

local function index_line(lid, m)
  for _, aid in ipairs(redis.call("SMEMBERS", k("agents"))) do
    local ag = load_agent(aid)
    local qv = ag and qualify(ag, m)
    if qv then redis.call("SADD", k("acand", qv, ":", aid), lid) end
  end
end

local function index_agent(ag)
  redis.call("DEL", k("acand1:", ag.id), k("acand0:", ag.id))
  local all = redis.call("HGETALL", k("linemeta"))
  for i = 1, #all, 2 do
    local qv = qualify(ag, cjson.decode(all[i + 1]))
    if qv then redis.call("SADD", k("acand", qv, ":", ag.id), all[i]) end
  end
end

-- ...: more fields of the call's hash to write in the same HSET
local function insert(c, front, ...)
  local lid = line_of(c, front)
  if redis.call("HEXISTS", k("linemeta"), lid) == 0 then
    local m = {q = c.queue, p = c.prio, s = c.needs, f = front, b = c.bucket}
    if c.cb and c.cb ~= "" then m.h = c.hours_line or "" end
    redis.call("HSET", k("linemeta"), lid, cjson.encode(m))
    index_line(lid, m)
  end
  redis.call("ZADD", k("line:", lid), c.score, c.id)
  redis.call("SADD", k("lines"), lid)
  redis.call("HSET", k("call:", c.id), "line", lid, "front", front and "1" or "0", ...)
  if c.status == "callback_pending" then redis.call("SADD", k("cbp"), c.id) end
end

local function unline(cid, lid)
  if not lid or lid == "" then return end
  redis.call("ZREM", k("line:", lid), cid)
  if redis.call("ZCARD", k("line:", lid)) == 0 then redis.call("SREM", k("lines"), lid) end
  redis.call("HSET", k("call:", cid), "line", "")
  redis.call("SREM", k("cbp"), cid)
end

-- a call in line whose kind or hours changed (a caller who became a callback) moves to
-- the line it belongs in now, keeping its score (its place) and its front flag
local function reline(c)
  if not c.line or c.line == "" then return end
  local front = c.front == "1"
  if line_of(c, front) == c.line then return end
  unline(c.id, c.line)
  insert(c, front)
end

-- Can agent ag take a call of line meta m whose order score is sc? Returns eff. priority.
local function eligible(ag, m, sc)
  local r = rules(m.q)
  local wait = NOW - sc
  local relaxed, boost, overflow = aging(r, wait)
  if not (serves(ag, m.q) or (overflow and serves(ag, overflow))) then return nil end
  for s, l in pairs(m.s) do
    local need = l
    if relaxed and relaxed < need then need = relaxed end
    if (ag.skills[s] or 0) < need then return nil end
  end
  return m.p + boost + (m.f and FRONT_BONUS or 0)
end

local function line_parts(lid)  -- queue, priority, front flag of a line id
  local t = PARTS.entries[lid]
  if not t then
    local q, f, p = string.match(lid, "^([^|]*)|.*#(f?)(%d+)$")
    t = PARTS.put(lid, {q, tonumber(p), f == "f"})
  end
  return t[1], t[2], t[3]
end

-- a call in line may be routed now: a callback only while its line's hours are open
local function routable(cid)
  if CB_OK or redis.call("SISMEMBER", k("cbp"), cid) == 0 then return true end
  return cb_open(redis.call("HGET", k("call:", cid), "hours_line") or "")
end

-- first routable member of a line: a callbacks' line is routable whole, or not at all;
-- a callers' line holds callbacks only if queued before callbacks had lines of their own
local function head(lid)
  local hours = meta(lid).h
  if hours and not cb_open(hours) then return nil end
  local top = redis.call("ZRANGE", k("line:", lid), 0, 0, "WITHSCORES")
  if #top == 0 then return nil end
  if hours or routable(top[1]) then return top[1], tonumber(top[2]) end
  local start = 1
  while true do
    local more = redis.call("ZRANGE", k("line:", lid), start, start + CHUNK - 1, "WITHSCORES")
    if #more == 0 then return nil end
    for i = 1, #more, 2 do
      if routable(more[i]) then return more[i], tonumber(more[i + 1]) end
    end
    start = start + CHUNK
  end
end

-- The best waiting call agent ag can take: call id, line id (or nil).
-- Lines are read best bound first (priority + front bonus + every aging raise, known
-- from the line id and rules without reading Redis); once a call ranks above a line's
-- bound, neither that line nor any after it can win, so they are never read.
local function find_call(ag)
  local cand = {}
  local function gather(set, sure)
    for _, lid in ipairs(redis.call("SINTER", k(set, ag.id), k("lines"))) do
      local q, p, f = line_parts(lid)
      local r = rules(q)
      local base = p + (f and FRONT_BONUS or 0)
      cand[#cand + 1] = {lid, sure, base, base + r.max_boost, r}
    end
  end
  gather("acand1:", true)
  gather("acand0:", false)
  table.sort(cand, function(x, y) return x[4] > y[4] end)
  local best, best_line, bp, bs
  for _, x in ipairs(cand) do
    if best ~= nil and x[4] < bp then break end
    local lid = x[1]
    local cid, sc = head(lid)
    if cid then
      local p
      if x[2] then
        p = x[3]
        if #x[5].steps > 0 then local _, boost = aging(x[5], NOW - sc); p = p + boost end
      else
        p = eligible(ag, meta(lid), sc)
      end
      if p and (best == nil or p > bp or (p == bp and (sc < bs or (sc == bs and cid < best)))) then
        best, best_line, bp, bs = cid, lid, p, sc
      end
    end
  end
  return best, best_line
end

-- The best free agent for call c (agent table or nil).
local function find_agent(c)
  local r = rules(c.queue)
  local m = {q = c.queue, s = c.needs, p = c.prio, f = false}
  local key = k("free")
  if r.agent_order ~= "longest_idle" then
    local primary, plevel
    for s, l in pairs(c.needs) do
      if primary == nil or l > plevel or (l == plevel and s < primary) then primary, plevel = s, l end
    end
    if primary then key = k("free:", primary) end
  end
  local start = 0
  while true do
    local ids = redis.call("ZRANGE", key, start, start + CHUNK - 1)
    if #ids == 0 then return nil end
    for _, aid in ipairs(ids) do
      local ag = load_agent(aid)
      if ag and taking(ag) and eligible(ag, m, c.score) then return ag end
    end
    start = start + CHUNK
  end
end
