-- Issue 15.1: an action that replaces its own _ENV keeps it for the next case
-- (the compiled chunk is reused).
-- payload: {"s": "123456782"}
-- load: script assigns _ENV
_ENV = setmetatable({leaked = event.data.s}, {__index = _ENV})
