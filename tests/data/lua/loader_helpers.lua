-- Named guards and actions for the loader tests (tests/data/defs/valid/with_lua.yaml).
return {
  is_kansarm = function(case) return case.kansarm == true end,
  markeer = function(case) case.kansarm = true end,
}
