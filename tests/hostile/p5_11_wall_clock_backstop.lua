-- Issue 15.5: with no instruction budget at all, the wall-clock limit still
-- ends the call.
-- limit: instructions=0
-- limit: time=200
-- fire: limit exceeded the time limit (200 ms)
while true do end
