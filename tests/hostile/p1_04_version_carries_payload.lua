-- Issue 15.1: _VERSION = event.data.s carried one case's payload (a BSN) into another.
-- payload: {"s": "123456782"}
-- fire: script '_VERSION' is a sandbox global
-- check: _VERSION == 'Lua 5.4'
_VERSION = event.data.s
