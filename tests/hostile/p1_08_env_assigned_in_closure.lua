-- kind: guard
-- Issue 15.1: the same from a function inside a guard expression.
-- load: script assigns _ENV
(function() _ENV = {} end)() or true
