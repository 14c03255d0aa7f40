-- Callback operations of the router (appended to router.lua and sweep.lua by
-- queueing/store_wire.py; their helpers are in scope). A callback keeps its caller's
-- place; when it reaches the front an agent is reserved, then we ring the customer.
-- Results of a leg are applied only to the current reservation (res) and leg (leg);
-- anything older is ignored.

-- a call in line (waiting, or a callback already) becomes a callback that keeps its
-- place: number A.number, the hours of A.hours_line (else those it had)
local function to_callback(c)
  c.hours_line = A.hours_line or c.hours_line or ""
  redis.call("HSET", k("call:", c.id), "status", "callback_pending", "cb", A.number,
    "hours_line", c.hours_line)
  c.status, c.cb = "callback_pending", A.number
  reline(c)
end

local function callback_ops()
  if OP == "enqueue_callback" then
    -- Straight into callback_pending in one step: a free agent is reserved for it at once
    -- (when open), never for a caller who is no longer holding.
    local c = load_call(A.id)
    if not c then
      local _, asg, resumed = new_call(A.number)
      return result({status = asg and "reserved" or "callback_pending", assignment = asg or NULL,
                     resumed_from = resumed})
    end
    if c.status == "waiting" or c.status == "callback_pending" then
      local was = c.status
      to_callback(c)
      if was == "waiting" then event("callback", {call = c.id, queue = c.queue}) end
      return result({status = "callback_pending", assignment = NULL})
    end
    local hours_line = A.hours_line or c.hours_line or ""
    c.hours_line = hours_line
    local lost = c.status == "bridged" and c.cb == "" and A.lost == true
    if (c.status == "reserved" or lost) and c.cb == "" then
      -- an agent was reserved while the caller was choosing the callback: that agent is
      -- freed (not paused: nobody failed) and the call, now a callback, keeps the head of
      -- its line; the agent may well take it straight back, this time to call the customer.
      -- (lost: put through to an agent, but our update never reached Twilio -- the caller
      -- still holds and asks for a callback: the answer is undone the same way)
      if lost then unanswer(c) end
      redis.call("HSET", k("call:", c.id), "status", "callback_pending", "cb", A.number,
        "res_id", "", "agent", "", "hours_line", hours_line)
      c.status, c.cb = "callback_pending", A.number
      insert(c, true)
      event("callback", {call = c.id, queue = c.queue})
      local asg = release(c)  -- c.agent still names the agent to free
      if not asg then asg = route_call(c, line_of(c, true)) end
      local now_status = redis.call("HGET", k("call:", c.id), "status")
      return result({status = now_status, assignment = asg or NULL})
    end
    if c.status == "reserved" then return result({status = "reserved", assignment = NULL}) end
    return fail("invalid_transition", "call " .. c.id .. " is " .. c.status ..
      "; only a call still in line can ask for a callback")

  elseif OP == "callback" then
    local c, err = must_call(A.call)
    if not c then return err end
    if c.status ~= "waiting" and c.status ~= "callback_pending" then
      return fail("invalid_transition", "call " .. c.id .. " is " .. c.status ..
        "; only a waiting call can ask for a callback")
    end
    to_callback(c)
    event("callback", {call = c.id, queue = c.queue})
    return result({status = "callback_pending"})

  elseif OP == "cb_dialing" then
    -- About to ring the customer for reservation A.res: the agent stays reserved for the
    -- whole ringing (A.hold seconds from now), whenever the dial job actually runs.
    local c = load_call(A.call)
    if not c or c.status ~= "reserved" or c.cb == "" or c.res_id ~= A.res then
      return result({ok = false, status = c and c.status or NULL})
    end
    if not cb_open(c.hours_line) then
      -- the line closed since the reservation (a late or retried dial job): nobody is
      -- rung; the call keeps the head of its line for the opening, the agent is freed
      redis.call("HSET", k("call:", c.id), "status", "callback_pending", "res_id", "")
      c.status = "callback_pending"
      insert(c, true)
      local asg = release(c)
      redis.call("HSET", k("call:", c.id), "agent", "")
      event("callback_closed", {call = c.id, queue = c.queue})
      return result({ok = false, status = "callback_pending", closed = true,
                     assignment = asg or NULL})
    end
    local deadline = math.max(tonumber(c.res_deadline), NOW + num(A.hold, CB_HOLD))
    redis.call("HSET", k("call:", c.id), "res_deadline", deadline)
    redis.call("ZADD", k("res"), deadline, c.id)
    return result({ok = true, number = c.cb, deadline = deadline})

  elseif OP == "cb_leg" then
    -- Twilio's CallSid of the leg just placed for reservation A.res.
    local c = load_call(A.call)
    if not c or c.res_id ~= A.res then return result({ok = false}) end
    redis.call("HSET", k("call:", c.id), "cb_leg", A.leg, "note_callback_sid", A.leg)
    return result({ok = true})

  elseif OP == "callback_result" then
    -- What became of a callback leg: answered (bridged to the reserved agent), ended after
    -- being answered (the call is complete), or not answered (retry later / give up).
    local c, err = must_call(A.call)
    if not c then return err end
    local stale = (A.res and A.res ~= c.res_id) or
      (A.leg and c.cb_leg and c.cb_leg ~= "" and A.leg ~= c.cb_leg)
    if stale or c.cb == "" or (c.status ~= "reserved" and c.status ~= "bridged") then
      return result({status = c.status, changed = false, stale = stale and true or false})
    end
    local ag = c.agent ~= "" and load_agent(c.agent) or nil
    if A.ended then
      if c.status == "reserved" then answered(c, ag) end
      local asg = complete(c, ag, nil)
      return result({status = "completed", changed = true, assignment = asg or NULL})
    end
    if A.answered then
      if c.status == "bridged" then return result({status = "bridged", changed = false}) end
      answered(c, ag)
      return result({status = "bridged", changed = true})
    end
    if c.status == "bridged" and A.why ~= "customer_left" then
      -- the customer is talking to the agent: a late no-answer never undoes that (they
      -- left before the agent picked up: "customer_left", an attempt that did not reach)
      return result({status = "bridged", changed = false})
    end
    local status, asg = cb_fail(c, A.why or "no-answer")
    return result({status = status, changed = true, assignment = asg or NULL})
  end

  return fail("bad_op", "unknown router operation " .. tostring(OP))
end
