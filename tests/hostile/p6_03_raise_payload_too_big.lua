-- Issue 15.6: ... and so is what an action raises or emits.
-- limit: memory=64000000
-- fire: limit CASE_LIMIT_PAYLOAD
raise('intern', {s = string.rep('x', 2 * 1024 * 1024)})
