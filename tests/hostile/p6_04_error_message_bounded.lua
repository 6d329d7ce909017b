-- Issue 15.6: a script's error message ends up in case_errmsg() and in the
-- store's refused rows; it is cut at 1 KiB.
-- limit: memory=64000000
-- fire: script
-- message-max: 1400
error(string.rep('x', 1000000))
