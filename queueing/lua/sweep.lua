-- The router's clock and a holding caller's questions (appended to router.lua by
-- queueing/store_wire.py; its helpers are in scope): "tick" fires due reservations,
-- wrap-ups and callback retries, and offers waiting calls to free agents; "position"
-- says where a call stands in line and what it may be offered.

-- The operation OP, or nil when it is not one of these.
local function sweep_ops()
  if OP == "tick" then
    local out = {}
    local limit = A.limit or 1000
    local function add(a) if a then out[#out + 1] = a end end
    for _, cid in ipairs(redis.call("ZRANGEBYSCORE", k("res"), "-inf", NOW, "LIMIT", 0, limit)) do
      local c = load_call(cid)
      if c and c.status == "reserved" and c.cb ~= "" then local _, a = cb_fail(c, "expired"); add(a)
      elseif c and c.status == "reserved" then add(requeue(c, load_agent(c.agent), "no_answer"))
      else redis.call("ZREM", k("res"), cid) end
    end
    for _, aid in ipairs(redis.call("ZRANGEBYSCORE", k("wrap"), "-inf", NOW, "LIMIT", 0, limit)) do
      local ag = load_agent(aid)
      if ag and ag.state == "wrap_up" then add(become_available(ag)) else redis.call("ZREM", k("wrap"), aid) end
    end
    for _, cid in ipairs(redis.call("ZRANGEBYSCORE", k("cbretry"), "-inf", NOW, "LIMIT", 0, limit)) do
      redis.call("ZREM", k("cbretry"), cid)
      local c = load_call(cid)
      if c and c.status == "callback_pending" then insert(c, true); add(route_call(c, line_of(c, true))) end
    end
    if redis.call("SCARD", k("lines")) > 0 then
      for _, aid in ipairs(redis.call("ZRANGE", k("free"), 0, limit - 1)) do
        local ag = load_agent(aid)
        if ag then add(route_agent(ag)) end
      end
    end
    return result({assignments = out})

  elseif OP == "position" then
    local c, err = must_call(A.call)
    if not c then return err end
    local r = rules(c.queue)
    local wait = NOW - c.score
    local _, boost, overflow, vm = aging(r, wait)
    local waiting, ahead = 0, 0
    local mine = c.prio + (c.front == "1" and FRONT_BONUS or 0)
    local lines = redis.call("SMEMBERS", k("lines"))
    -- (its score as Redis keeps it: exact, for counting who entered before it)
    local my_score = c.line ~= "" and redis.call("ZSCORE", k("line:", c.line), c.id)
    for _, lid in ipairs(lines) do
      local m = meta(lid)
      if m.q == c.queue then waiting = waiting + redis.call("ZCARD", k("line:", lid)) end
      -- (callbacks of a line closed now take no agent before this call: not ahead)
      if my_score and m.b == c.bucket and (lid == c.line or not m.h or cb_open(m.h)) then
        local theirs = m.p + (m.f and FRONT_BONUS or 0)
        if theirs > mine then ahead = ahead + redis.call("ZCARD", k("line:", lid))
        elseif lid == c.line then ahead = ahead + redis.call("ZRANK", k("line:", lid), c.id)
        elseif theirs == mine then  -- callers and callbacks of the same rank: by their age
          ahead = ahead + redis.call("ZCOUNT", k("line:", lid), "-inf", "(" .. my_score)
        end
      end
    end
    local offer_cb = r.offer_callback_after_s ~= NULL and wait >= r.offer_callback_after_s
    return result({status = c.status, position = c.line ~= "" and ahead + 1 or 0, waiting = waiting,
      wait_s = NOW - c.entered_at, offer_callback = offer_cb and c.status == "waiting",
      offer_voicemail = vm, overflowed_to = overflow or NULL, priority = c.prio + boost})
  end
end
