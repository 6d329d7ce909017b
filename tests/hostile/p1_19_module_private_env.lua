-- kind: module
-- Not an attack: a module with a private environment of its own, a class with
-- a metatable and a constant table still works once frozen.
-- after: case.x == 42 and case.s == 'b:ab'
local _ENV = setmetatable({}, {__index = _ENV})
answer = 42
local Name = {}
Name.__index = Name
function Name.new(s) return setmetatable({s = s}, Name) end
function Name:upper() return self.s .. ':' .. 'ab' end
local KEYS = {'a', 'b'}
return {attack = function(case)
  case.x = answer
  case.s = KEYS[#KEYS] .. ':' .. table.concat(KEYS)
  assert(Name.new('x'):upper() == 'x:ab')
  assert(getmetatable(Name.new('y')) == Name)
end}
