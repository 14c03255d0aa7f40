-- The router: every state change of calls and agents, one atomic Redis call per decision.
-- Arguments: prefix, op, now, JSON arguments, callbacks-open flag. Returns JSON.
-- (common.lua is prepended: P, OP, NOW, A, helpers.)

-- known: the call's table when the caller has it (its queue and cb); base: fields of a
-- new call's hash, written in the same HSET
local function reserve(cid, lid, ag, known, base)
  local c = known and {known.queue, known.cb} or redis.call("HMGET", k("call:", cid), "queue", "cb")
  local r = rules(c[1])
  local rid = tostring(redis.call("INCR", k("seq")))
  local hold = r.reservation_timeout_s
  -- a callback's agent waits while we ring the customer: never less than that ringing
  if c[2] and c[2] ~= "" then hold = math.max(hold, num(A.cb_hold, CB_HOLD)) end
  local deadline = NOW + hold
  local fields = {}
  for _, v in ipairs(base or {}) do fields[#fields + 1] = v end
  for _, v in ipairs({"status", "reserved", "agent", ag.id, "res_id", rid,
      "res_deadline", deadline, "reserved_at", NOW, "cb_leg", ""}) do
    fields[#fields + 1] = v
  end
  if lid and lid ~= "" then  -- out of its line (as unline does, in the same HSET)
    redis.call("ZREM", k("line:", lid), cid)
    if redis.call("ZCARD", k("line:", lid)) == 0 then redis.call("SREM", k("lines"), lid) end
    -- only a callback can be in cbp (a call's cb is never cleared)
    if c[2] and c[2] ~= "" then redis.call("SREM", k("cbp"), cid) end
  end
  fields[#fields + 1] = "line"; fields[#fields + 1] = ""  -- in no line (position 0)
  redis.call("HSET", k("call:", cid), unpack(fields))
  redis.call("ZADD", k("res"), deadline, cid)
  ag.calls[#ag.calls + 1] = cid
  ag.load = ag.load + 1
  if ag.load >= ag.capacity then rem_free(ag) end
  local extra = {load_fields(ag)}
  for _, v in ipairs(ag.pending or {}) do extra[#extra + 1] = v end
  ag.pending = nil
  put_agent_state(ag, "reserved", nil, unpack(extra))
  event("reserved", {call = cid, agent = ag.id, queue = c[1], agent_state = "reserved"})
  local cb = NULL
  if c[2] and c[2] ~= "" then cb = c[2] end
  return {call_id = cid, agent_id = ag.id, queue = c[1], reservation_id = rid,
          deadline = deadline, callback_number = cb}
end

local function route_agent(ag)
  if not taking(ag) then rem_free(ag); return nil end
  local cid, lid = find_call(ag)
  if cid then return reserve(cid, lid, ag) end
  add_free(ag)
  return nil
end

-- base: a new call's fields, written with the reservation's (see reserve)
local function route_call(c, lid, base)
  -- outside its line's business hours a callback keeps its place and waits
  if c.status == "callback_pending" and not cb_open(c.hours_line) then return nil end
  local ag = find_agent(c)
  if ag then return reserve(c.id, lid, ag, c, base) end
  return nil
end

local function become_available(ag)
  -- wrapping up, paused or offline: never in the free set (no ZREM to ask it)
  if ag.state == "wrap_up" or ag.state == "paused" or ag.state == "offline" then ag.not_free = true end
  redis.call("ZREM", k("wrap"), ag.id)
  ag.idle = NOW
  local state = ag.load > 0 and "busy" or "available"
  ag.state = state
  -- written with the state that follows: one write (and event) when a call takes them at once
  ag.pending = {"idle_since", NOW, "wrap_until", ""}
  local asg = route_agent(ag)
  if not asg then
    ag.pending = nil
    set_agent_state(ag, state, nil, "idle_since", NOW, "wrap_until", "")
  end
  return asg
end

local function stat(queue, field, by)
  redis.call("HINCRBYFLOAT", k("stats:", queue), field, by)
end

-- put a reserved call back at the head of its line; pause the agent
local function requeue(c, ag, reason)
  local on_the_line = c.status == "bridged"  -- a callback's customer who picked up
  redis.call("ZREM", k("res"), c.id)
  local status = (c.cb and c.cb ~= "") and "callback_pending" or "waiting"
  redis.call("HSET", k("call:", c.id), "status", status, "agent", "", "res_id", "")
  c.status = status
  if ag then
    drop_call(ag, c.id)
    rem_free(ag)
    set_agent_state(ag, "paused", reason)
  end
  if status == "callback_pending" and on_the_line then
    -- the customer is still on the line hearing that we will call back: ring again
    -- after the queue's retry delay, first in line then (no attempt counted: not theirs)
    redis.call("HSET", k("call:", c.id), "cb_leg", "")
    redis.call("ZADD", k("cbretry"), NOW + rules(c.queue).callback_retry_s, c.id)
    event("requeued", {call = c.id, reason = reason, queue = c.queue})
    return nil
  end
  insert(c, true)
  event("requeued", {call = c.id, reason = reason, queue = c.queue})
  return route_call(c, line_of(c, true))
end

local function release(c)
  redis.call("ZREM", k("res"), c.id)
  local ag = c.agent and c.agent ~= "" and load_agent(c.agent)
  if ag and drop_call(ag, c.id) and (ag.state == "reserved" or ag.state == "busy") then
    return become_available(ag)
  end
  return nil
end

local function finish(cid, status)
  redis.call("HSET", k("call:", cid), "status", status, "ended_at", NOW)
  redis.call("SREM", k("active"), cid)
  redis.call("EXPIRE", k("call:", cid), A.ttl or 86400)
end

-- the caller left the line: hung up (abandoned: counted, may resume their place) or,
-- with reason "voicemail", left a message from the hold (not an abandonment)
local function abandon(c, reason)
  unline(c.id, c.line)
  redis.call("ZREM", k("cbretry"), c.id)
  local out = nil
  if c.status == "reserved" then out = release(c) end
  local wait = NOW - c.entered_at
  if reason == "voicemail" then
    finish(c.id, "voicemail")
    redis.call("HSET", k("call:", c.id), "wait_s", wait, "end_reason", reason)
    stat(c.queue, "voicemail", 1)
    event("voicemail", {call = c.id, queue = c.queue, wait_s = wait})
    return out
  end
  finish(c.id, "abandoned")
  redis.call("HSET", k("call:", c.id), "wait_s", wait, "end_reason", reason)
  stat(c.queue, "abandoned", 1)
  stat(c.queue, "abandon_wait_sum", wait)
  redis.call("LPUSH", k("abandons"), cjson.encode({call_id = c.id, queue = c.queue, wait_s = wait,
    at = NOW, caller = c.caller, reason = reason}))
  redis.call("LTRIM", k("abandons"), 0, 9999)
  local window = rules(c.queue).resume_window_s
  if c.caller ~= "" and window > 0 then
    redis.call("SET", k("resume:", c.caller), c.id, "PX", math.floor(window * 1000))
  end
  event("abandoned", {call = c.id, queue = c.queue, wait_s = wait})
  return out
end

-- a callback attempt that did not reach the customer: free the agent (not their fault),
-- retry after the queue's callback.retry_s, or give up after callback.max_attempts
local function cb_fail(c, reason)
  redis.call("ZREM", k("res"), c.id)
  local tries = tonumber(c.cb_attempts or "0") + 1
  redis.call("HSET", k("call:", c.id), "cb_attempts", tries, "agent", "", "res_id", "",
    "cb_leg", "", "cb_last", reason)
  local asg = release(c)
  local r = rules(c.queue)
  if tries >= r.callback_max_attempts then
    finish(c.id, "callback_failed")
    stat(c.queue, "callback_failed", 1)
    event("callback_failed", {call = c.id, queue = c.queue})
    return "callback_failed", asg
  end
  redis.call("HSET", k("call:", c.id), "status", "callback_pending")
  redis.call("ZADD", k("cbretry"), NOW + r.callback_retry_s, c.id)
  event("callback_retry", {call = c.id, queue = c.queue, reason = reason})
  return "callback_pending", asg
end

local function answered(c, ag)
  redis.call("ZREM", k("res"), c.id)
  redis.call("HSET", k("call:", c.id), "status", "bridged", "answered_at", NOW)
  local wait = NOW - c.entered_at
  stat(c.queue, "answered", 1)
  stat(c.queue, "answer_wait_sum", wait)
  if wait <= rules(c.queue).service_level_s then stat(c.queue, "answered_in_sl", 1) end
  if ag then put_agent_state(ag, "busy") end
  event("bridged", {call = c.id, agent = c.agent, queue = c.queue, agent_state = ag and "busy" or ""})
end

-- an answer that did not happen: out of the service figures again (the call is bridged)
local function unanswer(c)
  local wait = num(c.answered_at, NOW) - c.entered_at
  stat(c.queue, "answered", -1)
  stat(c.queue, "answer_wait_sum", -wait)
  if wait <= rules(c.queue).service_level_s then stat(c.queue, "answered_in_sl", -1) end
  redis.call("HDEL", k("call:", c.id), "answered_at")
end

-- (the call is out of res: answered() took it out when it was bridged)
local function complete(c, ag, wrap)
  local talk = NOW - num(c.answered_at, NOW)
  finish(c.id, "completed")
  stat(c.queue, "completed", 1)
  stat(c.queue, "handle_sum", talk)
  local done = {call = c.id, agent = c.agent, queue = c.queue}
  if not ag or not unassign(ag, c.id) then event("completed", done); return nil end
  if ag.load == 0 and ag.state ~= "paused" and ag.state ~= "offline" then
    if wrap == nil or wrap < 0 then wrap = rules(c.queue).wrap_up_s end
    if wrap > 0 then  -- its calls' fields and the wrap-up in one write, one event
      rem_free(ag)
      redis.call("ZADD", k("wrap"), NOW + wrap, ag.id)
      put_agent_state(ag, "wrap_up", nil, "wrap_until", NOW + wrap, load_fields(ag))
      done.agent_state = "wrap_up"
      event("completed", done)
      return nil
    end
  end
  event("completed", done)
  redis.call("HSET", k("agent:", ag.id), load_fields(ag))
  if ag.state == "paused" or ag.state == "offline" then return nil end
  if ag.load > 0 then set_agent_state(ag, "busy"); return route_agent(ag) end
  return become_available(ag)
end

local function must_call(cid)
  local c = load_call(cid)
  if not c then return nil, fail("unknown_call", "no call " .. cid .. " in the queue") end
  return c
end

local function must_agent(aid)
  local ag = load_agent(aid)
  if not ag then return nil, fail("unknown_agent", "no agent " .. aid .. "; create it first") end
  return ag
end

local function holding(c, aid)
  if c.agent ~= aid then
    return fail("invalid_transition", "call " .. c.id .. " is " .. c.status .. " and not at agent " .. aid)
  end
  return nil
end

local function result(t) return cjson.encode(t) end

-- A new call in the router (taking back an abandoned place of the same caller within
-- the resume window). cb: the callback number, or "" for a caller holding on the line.
local function new_call(cb)
  local r = rules(A.queue)
  local entered, prio, resumed = A.entered_at, A.prio, NULL
  if A.caller ~= "" then
    local rk = k("resume:", A.caller)
    local old = redis.call("GET", rk)
    if old then
      local o = redis.call("HMGET", k("call:", old), "status", "entered_at", "prio", "queue", "ended_at")
      if o[1] == "abandoned" and o[4] == A.queue and NOW - tonumber(o[5]) <= r.resume_window_s then
        entered = tonumber(o[2])
        if tonumber(o[3]) > prio then prio = tonumber(o[3]) end
        resumed = old
        redis.call("HSET", k("call:", old), "status", "resumed", "resumed_by", A.id)
        stat(A.queue, "abandoned", -1)
        stat(A.queue, "resumed", 1)
      end
      redis.call("DEL", rk)
    end
  end
  local score = entered - (tonumber(r.head_start_s[tostring(prio)]) or 0)
  local status = cb == "" and "waiting" or "callback_pending"
  local needs = cjson.encode(A.needs)
  local from = resumed == NULL and "" or resumed
  -- its hash is written once: with its place in line, or with the reservation it gets
  local base = {"queue", A.queue, "bucket", A.bucket,
    "needs", needs, "prio", prio, "entered_at", entered, "score", score,
    "caller", A.caller, "status", status, "cb", cb,
    "cb_attempts", 0, "created_at", NOW, "resumed_from", from, "hours_line", A.hours_line or ""}
  redis.call("SADD", k("active"), A.id)
  if resumed == NULL then stat(A.queue, "offered", 1) end
  event("enqueued", {call = A.id, queue = A.queue})
  if cb ~= "" then event("callback", {call = A.id, queue = A.queue}) end
  -- the call as load_call would read it back (Redis stores numbers as %.17g: exact)
  local c = {id = A.id, queue = A.queue, bucket = A.bucket, needs = cjson.decode(needs),
             prio = tonumber(prio), entered_at = tonumber(entered), score = tonumber(score),
             caller = A.caller, status = status, cb = cb, cb_attempts = "0", resumed_from = from,
             hours_line = A.hours_line or ""}
  local asg = route_call(c, nil, base)
  if not asg then insert(c, false, unpack(base)) end
  return c, asg, resumed
end

-- ---------------------------------------------------------------- operations

-- The operation OP, or nil when it is not one of these (callbacks.lua has the rest).
local function router_ops()
  if OP == "enqueue" then
    local prev = redis.call("HGET", k("call:", A.id), "status")
    if prev == "waiting" or prev == "callback_pending" or prev == "reserved"
        or prev == "bridged" then
      return result({status = prev, existing = true})  -- a repeat (a Twilio retry)
    end
    -- a call whose earlier time in line is over (talked, then asks for an agent again;
    -- or its queue failed and the flow tries another): a new time in line
    if prev then redis.call("DEL", k("call:", A.id)) end
    local _, asg, resumed = new_call("")
    return result({status = asg and "reserved" or "waiting", assignment = asg or NULL,
                   resumed_from = resumed})

  elseif OP == "upsert_agent" then
    local key = k("agent:", A.agent)
    local old = load_agent(A.agent)
    if old then rem_free(old) else
      redis.call("HSET", key, "state", "offline", "load", 0, "calls", "[]", "idle_since", NOW,
        "state_since", NOW, "reason", "")
      redis.call("SADD", k("agents"), A.agent)
    end
    redis.call("HSET", key, "skills", cjson.encode(A.skills), "capacity", A.capacity,
      "queues", cjson.encode(A.queues))
    local ag = load_agent(A.agent)
    index_agent(ag)
    local asg = nil
    if taking(ag) then asg = route_agent(ag) end
    return result({assignment = asg or NULL})

  elseif OP == "set_state" then
    local ag, err = must_agent(A.agent)
    if not ag then return err end
    if A.state == "available" then
      local asg = nil
      if ag.state == "offline" or ag.state == "paused" or ag.state == "wrap_up" then
        asg = become_available(ag)
      elseif taking(ag) then asg = route_agent(ag) end
      return result({assignment = asg or NULL})
    end
    if ag.load > 0 then
      return fail("invalid_transition", "agent " .. ag.id .. " has " .. ag.load ..
        " call(s); complete them before going " .. A.state)
    end
    rem_free(ag)
    redis.call("ZREM", k("wrap"), ag.id)
    set_agent_state(ag, A.state, A.reason)
    return result({assignment = NULL})

  elseif OP == "end_wrap" then
    local ag, err = must_agent(A.agent)
    if not ag then return err end
    if ag.state ~= "wrap_up" then return result({assignment = NULL}) end
    return result({assignment = become_available(ag) or NULL})

  elseif OP == "accept" or OP == "decline" then
    local c, err = must_call(A.call)
    if not c then return err end
    local ag, err2 = must_agent(A.agent)
    if not ag then return err2 end
    if OP == "accept" and c.status == "bridged" and c.agent == ag.id then return result({status = "bridged"}) end
    local bad = holding(c, ag.id)
    if bad then return bad end
    if c.status ~= "reserved" then
      return fail("invalid_transition", "call " .. c.id .. " is " .. c.status .. ", not ringing")
    end
    -- a callback is bridged when the customer answers our call, not when the agent accepts
    if OP == "accept" and c.cb ~= "" then return result({status = "reserved"}) end
    if OP == "accept" then answered(c, ag); return result({status = "bridged"}) end
    return result({status = "requeued", assignment = requeue(c, ag, "declined") or NULL})

  elseif OP == "bounce" then
    -- Accepted, but the agent's phone never answered the bridge: the answer did not happen.
    -- The caller goes back to the head of the line and the agent is paused (no-answer).
    local c, err = must_call(A.call)
    if not c then return err end
    if c.status ~= "bridged" then return result({status = c.status, assignment = NULL}) end
    unanswer(c)
    local ag = nil
    if c.agent and c.agent ~= "" then ag = load_agent(c.agent) end
    return result({status = "requeued", assignment = requeue(c, ag, "no_answer") or NULL})

  elseif OP == "expire" then
    local c = load_call(A.call)
    if not c or c.status ~= "reserved" or (A.res and A.res ~= c.res_id)
        or NOW < tonumber(c.res_deadline) then
      return result({expired = false})
    end
    if c.cb ~= "" then
      local _, asg = cb_fail(c, "expired")
      return result({expired = true, assignment = asg or NULL})
    end
    local ag = load_agent(c.agent)
    return result({expired = true, assignment = requeue(c, ag, "no_answer") or NULL})

  elseif OP == "complete" then
    local c, err = must_call(A.call)
    if not c then return err end
    if c.status == "completed" then return result({status = "completed", assignment = NULL}) end
    local bad = holding(c, A.agent)
    if bad then return bad end
    if c.status ~= "bridged" and c.status ~= "reserved" then
      return fail("invalid_transition", "call " .. c.id .. " is " .. c.status)
    end
    if c.status == "reserved" then answered(c, nil) end
    local asg = complete(c, load_agent(A.agent), A.wrap_up_s)
    return result({status = "completed", assignment = asg or NULL})

  elseif OP == "abandon" or OP == "end_call" then
    local c, err = must_call(A.call)
    if not c then return err end
    local asg = nil
    if c.cb ~= "" then
      -- a callback: the caller hung up on purpose, the place is kept; its own leg's status
      -- (callback_result) or the agent ends it, never the status of the original call
      asg = nil
    elseif c.status == "waiting" or c.status == "reserved" then
      asg = abandon(c, A.reason or "hangup")
    elseif OP == "end_call" and c.status == "bridged" then
      asg = complete(c, c.agent ~= "" and load_agent(c.agent), nil)
    end
    return result({status = redis.call("HGET", k("call:", c.id), "status"), assignment = asg or NULL})

  end
end

-- (sweep.lua follows: sweep_ops, the clock and the hold's questions; then
-- callbacks.lua: callback_ops, the callback operations)
