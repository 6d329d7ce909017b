-- Issue 15.6: a 100 MB payload was accepted, and every list/show afterwards cost
-- seconds and hundreds of megabytes.  A payload is at most CASE_LIMIT_PAYLOAD
-- (1 MiB by default) of JSON text.
-- payload-size: 2000000
-- fire: limit CASE_LIMIT_PAYLOAD
case.x = 1
