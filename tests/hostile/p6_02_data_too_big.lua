-- Issue 15.6: case data is at most CASE_LIMIT_DATA (4 MiB by default) as JSON.
-- limit: memory=64000000
-- fire: limit CASE_LIMIT_DATA
-- after: case.s == nil
case.s = string.rep('x', 5 * 1024 * 1024)
