-- The journal's proofs from Lua: the tree head, checkpoints, verify against one, a row's
-- audit path, and the checks that need no store (docs/lua.md, docs/store.md).
local libcase = require "libcase"
local T = require "t"
local MONDAY, DAY = T.MONDAY, T.DAY

local path = T.dbpath("proof")
local key, pub = T.TMP .. "/proof-key.pem", T.TMP .. "/proof-key.pub"
os.remove(key); os.remove(pub)

local function read(p)
  local f = assert(io.open(p, "rb"))
  local t = f:read("a")
  f:close()
  return t
end

libcase.keygen(key, pub)
T.raises("exists", libcase.keygen, key)
local pem = read(pub)

local s = libcase.open_store(path, { create = true, lua_root = T.SRC })
local e = s:engine()
local d = e:load(T.DEF)
s:add_def(d)
local size, root = s:tree()
T.eq(size, 0, "an empty journal")
T.eq(root, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "the empty tree")
for i = 1, 5 do s:create(d, "Z" .. i, { at = MONDAY, role = "IND" }) end
size, root = s:tree()
T.eq(size, 5, "five rows")
T.eq(#root, 64, "a hex root")

T.raises("misuse", s.checkpoint, s, {})
T.raises("notfound", s.checkpoint, s, { key = T.TMP .. "/no-such-key.pem" })
local cp1 = s:checkpoint { key = key, at = MONDAY + DAY }
local head = libcase.decode(cp1)
T.eq(head.size, 5, "the checkpoint covers the journal")
T.eq(head.root, root, "and has its root")
T.eq(head.time, MONDAY + DAY, "at the time given")

s:fire("Z1", "geregistreerd", "AVIM", { at = MONDAY + DAY })
local cp2 = s:checkpoint { key = key, since = cp1 }
T.eq(libcase.decode(cp2).proof.from_size, 5, "the later one carries the proof from the first")

local ok, rep = libcase.check_checkpoint(cp1, cp2, pem)
T.ok(ok, "cp2 extends cp1: " .. libcase.encode(rep))
T.eq(rep.consistent, true, "consistent")
ok, rep = libcase.check_checkpoint(cp2, cp1)
T.eq(ok, false, "not the other way round")
T.ok(rep.problems[1]:find("truncated"), "truncated: " .. tostring(rep.problems[1]))
T.raises("invalid", libcase.check_checkpoint, "{}", cp2)

ok, rep = s:verify { checkpoint = cp1, public_key = pem }
T.ok(ok, "verify against cp1: " .. libcase.encode(rep))
T.eq(rep.checkpoint.consistent, true, "the journal extends cp1")
T.eq(rep.checkpoint.trusted_key, true, "with the key given")
T.eq(rep.tree.size, 6, "the tree of today")
T.raises("invalid", s.verify, s, { public_key = pem })
T.raises("invalid", s.verify, s, { nonsense = 1 })
ok, rep = s:verify()
T.ok(ok, "verify without options")

local proof = s:prove(3, 5)
ok, rep = libcase.check_row(cp1, proof, pem)
T.ok(ok, "row 3 is in cp1's tree: " .. libcase.encode(rep))
T.eq(rep.case, "Z3", "the row's case")
ok = libcase.check_row(cp2, proof)
T.eq(ok, false, "a proof for 5 rows is not one for cp2's 6")
T.raises("notfound", s.prove, s, 99)
s:create(d, "Z6", { at = MONDAY, role = "IND" })
local cp3 = s:checkpoint { key = key, since = cp2 }
s:close()

-- An edit before the checkpoint, made consistently behind the store's back: the newest
-- case removed whole. Without a checkpoint verify cannot tell; with one it can.
local edited, out = T.sql(path, "DELETE FROM journal WHERE case_id='Z6'; " ..
                        "DELETE FROM timers WHERE case_id='Z6'; DELETE FROM cases WHERE id='Z6'")
T.ok(edited, "sql: " .. out)
s = libcase.open_store(path, { readonly = true, lua_root = T.SRC })
ok, rep = s:verify()
T.ok(ok, "a consistent truncation looks clean without a checkpoint: " .. libcase.encode(rep))
ok, rep = s:verify { checkpoint = cp1, public_key = pem }
T.ok(ok, "the rows cp1 covers are all there")
ok, rep = s:verify { checkpoint = cp3, public_key = pem }
T.eq(ok, false, "but cp3's are not")
T.eq(rep.problems[1].problem, "checkpoint", "a checkpoint problem")
T.ok(rep.problems[1].message:find("rows were removed"), rep.problems[1].message)
s:close()
os.remove(key); os.remove(pub)
T.done("proof")
