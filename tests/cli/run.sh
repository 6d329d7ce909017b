#!/usr/bin/env bash
# tests/cli/run.sh CASECTL SRCDIR NAME — casectl through the real binary.
#   commands: each command's happy path and its errors (exit codes, messages)
#   pilot:    the pilot replay's report equals examples/pilot/expected.json
#   scenarios: every process test in one `casectl test` call (one engine): no scenario
#             sees another's location profile
#   html:     the HTML report opens in headless Chromium with its charts drawn
#             (fails when chromium is not installed: scripts/bootstrap installs it)
#   readonly: every reading command on a store the user may only read (issue 12 §9),
#             run as nobody when the tests run as root (root ignores permissions)
set -uo pipefail
CASECTL=$1 SRC=$2 NAME=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export CASECTL_STORE=$T/case.db CASECTL_NO_PROGRESS=1
# CASE_CLI_PG=1 with $CASE_TEST_STORE naming a server (tests/CMakeLists.txt: the
# fixture's cluster): the test's store is a PostgreSQL schema of its own there,
# dropped at the end, instead of $T/case.db.
if [[ ${CASE_CLI_PG:-} == 1 ]]; then
  if [[ -z ${CASE_TEST_STORE:-} || $CASE_TEST_STORE == sqlite ]]; then
    echo "FAIL CASE_CLI_PG=1 needs \$CASE_TEST_STORE to name a PostgreSQL server"; exit 1
  fi
  pg_schema=cli_${NAME}_$$
  pg_sep='&'; [[ $CASE_TEST_STORE == *'?'* ]] || pg_sep='?'
  CASECTL_STORE="$CASE_TEST_STORE${pg_sep}schema=$pg_schema"
  trap 'psql -X -q "$CASE_TEST_STORE" -c "SET client_min_messages TO warning; DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null 2>&1; rm -rf "$T"' EXIT
fi
cd "$SRC"
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# expect CODE DESCRIPTION -- command...  (stdout in $T/out, stderr in $T/err)
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [[ $got == "$want" ]]; then ok "$what (exit $got)"; else bad "$what: exit $got, expected $want"; sed 's/^/     /' "$T/err" | head -5; fi
}
contains() { if grep -q -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in $(basename "$1")"; sed 's/^/     /' "$1" | head -5; fi; }

pilot_store() {
  "$CASECTL" init --quiet --profile ter_apel=lua/locations/ter_apel.lua \
    --profile budel=lua/locations/budel.lua &&
  "$CASECTL" load --quiet workflows/asielprocedure.yaml workflows/asielprocedure-v2.yaml &&
  "$CASECTL" import --quiet examples/pilot/pilot.jsonl &&
  "$CASECTL" tick --quiet --daily --at 2023-06-15
}

case $NAME in
commands)
  Q=examples/quickstart/aanmelding.yaml
  expect 0 "validate a good definition" -- "$CASECTL" validate $Q
  contains "$T/out" "aanmelding_demo version 1" "validate names the workflow"
  printf 'workflow: x\nversion: 1\ninitial: a\nstates:\n  a: {on: {e: nowhere}}\n' >"$T/bad.yaml"
  expect 1 "validate a bad definition" -- "$CASECTL" validate "$T/bad.yaml"
  contains "$T/err" "bad.yaml:5:" "the error says file:line"
  expect 3 "validate a missing file (not found)" -- "$CASECTL" validate "$T/none.yaml"
  expect 2 "unknown command" -- "$CASECTL" frobnicate
  expect 2 "unknown option" -- "$CASECTL" list --frob
  expect 0 "--help per command" -- "$CASECTL" fire --help
  contains "$T/out" "usage: casectl fire" "fire --help prints its usage"
  expect 3 "a command on a missing store" -- "$CASECTL" list
  contains "$T/err" "no such store" "the missing store is named"
  expect 0 "init" -- "$CASECTL" init
  expect 0 "load" -- "$CASECTL" load $Q
  if [[ -e $CASECTL_STORE.casectl.json ]]; then bad "init/load wrote a sidecar file"; else ok "no sidecar file next to the store"; fi
  expect 5 "load a bad definition" -- "$CASECTL" load "$T/bad.yaml"
  expect 0 "graph dot" -- "$CASECTL" graph $Q
  contains "$T/out" "digraph" "graph writes DOT"
  # Graphviz draws every diagram without a warning (it warned "head is inside tail
  # cluster" for edges into a compound state's own children); dot comes with
  # scripts/bootstrap, and without it this fails.
  for w in workflows/asielprocedure.yaml workflows/asielprocedure-v2.yaml; do
    if "$CASECTL" graph "$w" >"$T/w.dot" && dot -Tsvg "$T/w.dot" -o "$T/w.svg" 2>"$T/dot.err" && [[ ! -s $T/dot.err ]]; then
      ok "dot draws $w without a warning"
    else
      bad "dot on $w: $(head -3 "$T/dot.err" 2>/dev/null)"
    fi
  done
  expect 3 "new on an unknown workflow" -- "$CASECTL" new --workflow nope Z1
  expect 5 "new with bad JSON data" -- "$CASECTL" new --workflow aanmelding_demo --role IND --data '{x' Z1
  expect 0 "new" -- "$CASECTL" new --workflow aanmelding_demo --role IND --at 2026-03-02 Z1
  expect 5 "new twice" -- "$CASECTL" new --workflow aanmelding_demo --role IND --at 2026-03-02 Z1
  # A decree day stored in the store moves the registration term of a case created
  # after it: from Mon 2026-03-09, 3 working days end Thu 03-12, or Fri 03-13 when
  # Wed 03-11 is a holiday.
  H=(env CASECTL_STORE="$T/holiday.db" "$CASECTL")
  expect 2 "--holiday with a bad date" -- "${H[@]}" init --holiday 2026-3-11
  expect 0 "init --holiday stores a decree day" -- "${H[@]}" init --holiday 2026-03-11=testdag
  expect 0 "load into the holiday store" -- "${H[@]}" load $Q
  expect 0 "new after the decree day" -- "${H[@]}" new --workflow aanmelding_demo --role IND --at 2026-03-09 ZH
  expect 0 "show the moved term" -- "${H[@]}" show ZH
  contains "$T/out" "last day 2026-03-13" "the stored holiday moves the term"
  expect 0 "fire" -- "$CASECTL" fire --role AVIM --at 2026-03-03 Z1 geregistreerd
  expect 1 "fire as the wrong role" -- "$CASECTL" fire --role COA --at 2026-03-03 Z1 rvt_onthouden
  contains "$T/err" "refused" "the refusal is explained"
  expect 1 "fire with a false guard" -- "$CASECTL" fire --json --role IND --at 2026-03-03 Z1 rvt_onthouden
  expect 3 "fire at an unknown case" -- "$CASECTL" fire --role IND Z9 geregistreerd
  expect 2 "fire without a role" -- "$CASECTL" fire Z1 geregistreerd
  expect 0 "events" -- "$CASECTL" events --json --role COA --at 2026-03-04 Z1
  contains "$T/out" '"incident"' "COA may file an incident"
  expect 3 "events of an unknown case" -- "$CASECTL" events --role COA Z9
  expect 0 "show" -- "$CASECTL" show --at 2026-03-04 Z1
  contains "$T/out" "rust_en_voorbereiding" "show gives the configuration"
  contains "$T/out" "geregistreerd" "show gives the history"
  expect 0 "show --json" -- "$CASECTL" show --json Z1
  contains "$T/out" '"deadlines"' "show --json lists the running terms"
  expect 3 "show an unknown case" -- "$CASECTL" show Z9
  expect 0 "graph of a case" -- "$CASECTL" graph --format mermaid --case Z1
  contains "$T/out" "class rust_en_voorbereiding active" "the case's state is lit"
  expect 0 "list" -- "$CASECTL" list --json --state rust_en_voorbereiding
  contains "$T/out" '"Z1"' "list filters by state"
  expect 0 "list by role" -- "$CASECTL" list --role COA --at 2026-03-04
  contains "$T/out" "Z1" "COA can act on Z1"
  expect 0 "tick" -- "$CASECTL" tick --at 2026-03-20
  contains "$T/out" "1 timer(s) fired" "the RVT ran out"
  expect 0 "list --overdue" -- "$CASECTL" list --overdue --json
  expect 0 "follow" -- "$CASECTL" follow --after 1
  if [[ $(wc -l <"$T/out") == 2 ]]; then ok "follow gives the rows after seq 1"; else bad "follow rows: $(wc -l <"$T/out")"; fi
  # follow --wait prints a row another process commits as soon as it is committed.
  W=(env CASECTL_STORE="$T/wait.db" "$CASECTL")
  "${W[@]}" init --quiet && "${W[@]}" load --quiet $Q
  "${W[@]}" follow --wait >"$T/waited" 2>"$T/waited.err" &
  waiter=$!
  sleep 1
  expect 2 "follow --wait with --poll" -- "${W[@]}" follow --wait --poll 1
  "${W[@]}" new --quiet --workflow aanmelding_demo --role IND --at 2026-03-20 ZW
  for _ in $(seq 100); do [[ -s $T/waited ]] && break; sleep 0.1; done
  kill "$waiter" 2>/dev/null; wait "$waiter" 2>/dev/null
  if grep -q '"case":"ZW"' "$T/waited"; then ok "follow --wait shows the new row"; else bad "follow --wait printed: $(cat "$T/waited" "$T/waited.err")"; fi
  expect 0 "verify" -- "$CASECTL" verify
  printf 'time,case,event,role,payload,workflow\n2026-03-05T10:00,Z2,create,IND,,aanmelding_demo\n2026-03-06T10:00,Z2,geregistreerd,AVIM,,\n' >"$T/log.csv"
  expect 0 "import CSV" -- "$CASECTL" import "$T/log.csv"
  expect 0 "import CSV again adds nothing" -- "$CASECTL" import --json "$T/log.csv"
  contains "$T/out" '"skipped": 2' "both rows are counted as already there"
  contains "$T/out" '"fired": 0' "and nothing is counted as fired"
  printf 'time,case,event\n2026-03-07,Z2,"unterminated\n' >"$T/bad.csv"
  expect 5 "import a bad CSV" -- "$CASECTL" import "$T/bad.csv"
  printf '{"time":"2026-03-07T10:00","case":"Z2","event":"nope","role":"IND"}\n{"time":"x"}\n' >"$T/bad.jsonl"
  expect 5 "import a bad JSON Lines row" -- "$CASECTL" import "$T/bad.jsonl"
  contains "$T/err" "bad.jsonl:2:" "the bad row is named by line"
  printf '{"time":"2026-03-07T10:00","case":"Z2","event":"nope","role":"IND"}\n' >"$T/refused.jsonl"
  expect 1 "import a refused row" -- "$CASECTL" import "$T/refused.jsonl"
  expect 3 "import a missing file" -- "$CASECTL" import "$T/none.jsonl"
  expect 0 "report" -- "$CASECTL" report --at 2026-03-20 --format json
  contains "$T/out" '"total": 2' "the report counts two cases"
  expect 5 "report with bad options" -- "$CASECTL" report --options '{"nope":1}'
  expect 0 "test a scenario" -- "$CASECTL" test --lua-root "$SRC" tests/scenarios/s11_dublin_overdracht.yaml
  expect 3 "test a missing scenario (not found)" -- "$CASECTL" test "$T/none.yaml"
  # Coverage merged over two scenario files (tests/unit/test_coverage.c works the
  # figures out): 5 of the fixture's 9 transitions taken, odd (27:7) not.
  C=tests/data/coverage
  expect 0 "test --coverage" -- "$CASECTL" test --quiet --coverage $C/a.yaml $C/b.yaml
  contains "$T/out" "transitions taken        5/9 (55.6%)" "the figures are merged"
  contains "$T/out" "$C/fixture.yaml:27:7: transition on 'odd' from 'wait' to 'hidden' never taken" "untested transitions by file:line:col"
  expect 0 "test --coverage --json" -- "$CASECTL" test --json --coverage $C/a.yaml $C/b.yaml
  if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["coverage"]["definitions"][0]; sys.exit(0 if (c["cases"],c["transitions"]["covered"],len(d["files"]))==(2,5,2) else 1)' "$T/out"; then ok "the JSON report"; else bad "the JSON report"; head -c 400 "$T/out"; fi
  expect 0 "test --skeleton" -- "$CASECTL" test --quiet --start 2026-03-02 --skeleton $C/fixture.yaml:27:7 $C/a.yaml
  contains "$T/out" "  - event: odd" "the skeleton fires odd"
  expect 3 "test --skeleton to a transition no path reaches" -- "$CASECTL" test --quiet --skeleton $C/fixture.yaml:31:61 $C/a.yaml
  contains "$T/err" "no event path" "the unreachable transition is named"
  expect 2 "test --skeleton without a line" -- "$CASECTL" test --skeleton $C/fixture.yaml $C/a.yaml
  mkdir -p "$T/sk"
  expect 0 "test --skeletons DIR" -- "$CASECTL" test --skeletons "$T/sk" $C/a.yaml $C/b.yaml
  contains "$T/out" "3 skeleton(s) written to $T/sk; 1 untested transition(s) no event path reaches" "one skeleton per reachable untested transition"
  if [[ -f $T/sk/cov_fixture-v1-34-9.yaml ]]; then ok "skeletons are named WORKFLOW-vV-LINE-COL.yaml"; else bad "no $T/sk/cov_fixture-v1-34-9.yaml"; ls "$T/sk"; fi
  expect 1 "a written skeleton runs (its TODOs unfilled, the guarded step fails)" -- "$CASECTL" test "$T/sk/cov_fixture-v1-34-9.yaml"
  contains "$T/err" "guard 'event.data ~= nil and event.data.ok == true' is false" "it fails at the guard it names"
  expect 2 "graph --json is a usage error" -- "$CASECTL" graph --json $Q
  contains "$T/err" "no JSON output" "graph says it has no JSON output"
  # Filters naming what no stored workflow declares are errors, not empty lists.
  expect 5 "list --role of an undeclared role" -- "$CASECTL" list --role NOPE
  contains "$T/err" "declared: IND, AVIM, COA" "the declared roles are named"
  expect 5 "events --role of an undeclared role" -- "$CASECTL" events --role NOPE Z2
  contains "$T/err" "declared: IND, AVIM, COA" "events names the declared roles"
  expect 5 "list --state of an unknown state" -- "$CASECTL" list --state rust_en_voorbereding
  contains "$T/err" "did you mean 'rust_en_voorbereiding'" "a near state is suggested"
  # Import keys are the rows' content: a later file of the same name imports its rows.
  mkdir -p "$T/w1" "$T/w2"
  printf '{"time":"2026-03-09T10:00","case":"Z3","event":"create","workflow":"aanmelding_demo","role":"IND"}\n{"time":"2026-03-10T10:00","case":"Z3","event":"geregistreerd","role":"AVIM"}\n' >"$T/w1/week.jsonl"
  printf '{"time":"2026-03-16T10:00","case":"Z4","event":"create","workflow":"aanmelding_demo","role":"IND"}\n{"time":"2026-03-17T10:00","case":"Z4","event":"geregistreerd","role":"AVIM"}\n' >"$T/w2/week.jsonl"
  expect 0 "import week 1" -- "$CASECTL" import --json --no-tick "$T/w1/week.jsonl"
  contains "$T/out" '"fired": 1' "week 1 fires its event"
  expect 0 "import week 2, same file name" -- "$CASECTL" import --json --no-tick "$T/w2/week.jsonl"
  contains "$T/out" '"fired": 1' "week 2's event is fired, not skipped by name"
  contains "$T/out" '"skipped": 0' "nothing of week 2 was there"
  expect 0 "import week 2 again" -- "$CASECTL" import --json --no-tick "$T/w2/week.jsonl"
  contains "$T/out" '"fired": 0' "a re-import fires nothing"
  contains "$T/out" '"skipped": 2' "a re-import counts both rows as already there"
  expect 0 "show Z4" -- "$CASECTL" show --json Z4
  contains "$T/out" '"revision": 1' "Z4 has exactly one event"
  # A row without a role would fire as the system: refused, nothing imported.
  printf '{"time":"2026-03-18T10:00","case":"Z4","event":"incident","role":"COA"}\n{"time":"2026-03-18T11:00","case":"Z4","event":"incident"}\n{"time":"2026-03-18T12:00","case":"Z4","event":"incident","role":null}\n{"time":"2026-03-18T13:00","case":"Z4","event":"incident","role":""}\n{"time":"2026-03-18T14:00","case":"Z4","event":"rvt_verstreken","actor":"timer"}\n' >"$T/norole.jsonl"
  expect 5 "import rows without a role (invalid)" -- "$CASECTL" import "$T/norole.jsonl"
  for l in 2 3 4; do contains "$T/err" "norole.jsonl:$l: an event without a role" "row $l without a role is named"; done
  contains "$T/err" "norole.jsonl:5: a row by actor \"timer\"" "a timer row is explained"
  contains "$T/err" "nothing imported" "nothing is imported"
  printf 'time,case,event,role\n2026-03-18T10:00,Z4,incident,\n' >"$T/norole.csv"
  expect 5 "import a CSV row without a role" -- "$CASECTL" import "$T/norole.csv"
  contains "$T/err" "norole.csv:2:" "the CSV row is named"
  # Excel's "CSV UTF-8" and some editors' JSON Lines start with a byte-order mark.
  printf '\xef\xbb\xbftime,case,event,role,workflow\n2026-03-19T10:00,Z5,create,IND,aanmelding_demo\n' >"$T/bom.csv"
  expect 0 "import a CSV with a byte-order mark" -- "$CASECTL" import --json "$T/bom.csv"
  contains "$T/out" '"created": 1' "the BOM CSV's row is imported"
  printf '\xef\xbb\xbf{"time":"2026-03-19T10:00","case":"Z6","event":"create","workflow":"aanmelding_demo","role":"IND"}\n' >"$T/bom.jsonl"
  expect 0 "import JSON Lines with a byte-order mark" -- "$CASECTL" import --json "$T/bom.jsonl"
  contains "$T/out" '"created": 1' "the BOM JSONL's row is imported"
  # JSON Lines errors carry 1-based columns.
  printf '[1,2]\n' >"$T/arr.jsonl"
  expect 5 "import an array line" -- "$CASECTL" import "$T/arr.jsonl"
  contains "$T/err" "arr.jsonl:1:1: not a JSON object" "an array is reported at column 1"
  printf '{"time":"2026-03-19T10:00","case":"Z7","event":"create","workflow":"aanmelding_demo","role":"IND"}\n{"time":"2026-03-19T10:00","case":\n' >"$T/trunc.jsonl"
  expect 5 "import a truncated line" -- "$CASECTL" import "$T/trunc.jsonl"
  if grep -qE 'trunc.jsonl:2:[1-9][0-9]*: ' "$T/err"; then ok "a truncated line has a positive column"; else bad "truncated line column: $(cat "$T/err")"; fi
  printf '{"time":"2026-03-19T10:00","case":"Z7","event":"create","workflow":"aanmelding_demo","role":5}\n' >"$T/num.jsonl"
  expect 5 "import a non-string role" -- "$CASECTL" import "$T/num.jsonl"
  contains "$T/err" '"role" must be a string' "the field is named"
  # Issue 12 §7: a reused idempotency key is refused for another request and a retry
  # says it wrote nothing (it used to print "accepted (journal seq N)" for the old row).
  expect 0 "new ZK" -- "$CASECTL" new --workflow aanmelding_demo --role IND --at 2026-03-02 ZK
  expect 0 "fire with a key" -- "$CASECTL" fire --role AVIM --at 2026-03-03 --key abc ZK geregistreerd
  contains "$T/out" "geregistreerd accepted (journal seq" "the first fire is accepted"
  seq=$(sed -n 's/.*journal seq \([0-9]*\),.*/\1/p' "$T/out")
  expect 5 "another event with the same key" -- "$CASECTL" fire --role COA --at 2026-03-03 --key abc ZK incident
  contains "$T/err" "idempotency key 'abc' was first used for event 'geregistreerd' on case 'ZK' (journal seq $seq); this request differs in its event and role" "the reuse is refused, naming the first use"
  if grep -q accepted "$T/out"; then bad "a refused reuse printed accepted"; else ok "no false success"; fi
  expect 0 "the same request again" -- "$CASECTL" fire --role AVIM --at 2026-03-03 --key abc ZK geregistreerd
  contains "$T/out" "ZK: geregistreerd already accepted as journal seq $seq (idempotency key abc); nothing written" "the retry says so"
  expect 5 "the same key at another explicit time" -- "$CASECTL" fire --role AVIM --at 2026-03-04 --key abc ZK geregistreerd
  contains "$T/err" "differs in its time" "an explicit --at is part of the request"
  expect 0 "the same key without --at (now)" -- "$CASECTL" fire --json --role AVIM --key abc ZK geregistreerd
  contains "$T/out" '"replayed": true' "--json says replayed"
  expect 0 "show ZK" -- "$CASECTL" show --json ZK
  contains "$T/out" '"revision": 1' "ZK has exactly one event"
  # Issue 12 §12: one far-future row would move the whole store (the next tick fires
  # every term of every case up to it): refused unless --allow-future.
  far=$(date -u -d '+400 days' +%Y-%m-%d)
  printf '{"time":"2026-03-20T10:00","case":"ZF1","event":"create","workflow":"aanmelding_demo","role":"IND"}\n{"time":"%sT10:00","case":"ZF3","event":"create","workflow":"aanmelding_demo","role":"IND"}\n' "$far" >"$T/far.jsonl"
  expect 5 "import a row dated far ahead" -- "$CASECTL" import "$T/far.jsonl"
  contains "$T/err" "far.jsonl:2: time $far 10:00 is more than a day after now" "the far row is named"
  contains "$T/err" "nothing imported" "nothing is imported"
  expect 3 "the good row of that file was not imported either" -- "$CASECTL" show ZF1
  expect 5 "tick to far ahead" -- "$CASECTL" tick --at "$far"
  contains "$T/err" "the tick time .* is more than 1 day(s) after the store's clock" "tick says why"
  expect 5 "fire far ahead" -- "$CASECTL" fire --role COA --at "$far" ZK incident
  expect 0 "show ZK unchanged" -- "$CASECTL" show --json ZK
  contains "$T/out" '"revision": 1' "ZK did not move"
  expect 0 "new far ahead with --allow-future" -- "$CASECTL" new --allow-future --workflow aanmelding_demo --role IND --at "$far" ZF2
  expect 0 "import with --allow-future" -- "$CASECTL" import --allow-future --no-tick --json "$T/far.jsonl"
  contains "$T/out" '"created": 2' "both rows are imported when allowed"
  # Issue 12 §11: location profiles are versioned; a case keeps the version it ran with
  # (storing a changed profile used to replace it, and verify then failed old cases).
  P=(env CASECTL_STORE="$T/prof.db" "$CASECTL")
  printf 'workflow: drempel\nversion: 1\nroles: [IND]\nparams: {drempel: 1}\ndata: {n: {type: integer, default: 0}}\ninitial: open\nstates:\n  open:\n    on:\n      tel: {actions: ["case.n = case.n + 1"]}\n      sluit: {guard: "case.n >= params.drempel", target: dicht}\n  dicht: {final: true}\n' >"$T/drempel.yaml"
  printf 'return { params = { drempel = 1 } }\n' >"$T/loc1.lua"
  printf 'return { params = { drempel = 3 } }\n' >"$T/loc2.lua"
  expect 0 "init with profile loc version 1" -- "${P[@]}" init --profile "loc=$T/loc1.lua"
  expect 0 "load drempel" -- "${P[@]}" load "$T/drempel.yaml"
  for id in P1 P4; do
    expect 0 "new $id on version 1" -- "${P[@]}" new --workflow drempel --location loc --role IND --at 2026-03-02 $id
    expect 0 "tel $id" -- "${P[@]}" fire --role IND --at 2026-03-03 $id tel
  done
  expect 0 "P1 closes on version 1's threshold" -- "${P[@]}" fire --role IND --at 2026-03-04 P1 sluit
  expect 0 "store version 2 of loc" -- "${P[@]}" init --profile "loc=$T/loc2.lua"
  expect 0 "verify after a new profile version" -- "${P[@]}" verify
  contains "$T/out" "0 problem(s)" "the old cases replay on the version they ran with"
  expect 0 "new P2 after version 2" -- "${P[@]}" new --workflow drempel --location loc --role IND --at 2026-03-05 P2
  expect 0 "show P2" -- "${P[@]}" show P2
  contains "$T/out" "location      loc (profile version 2)" "a new case gets the new version"
  expect 0 "show P4" -- "${P[@]}" show P4
  contains "$T/out" "location      loc (profile version 1)" "a running case keeps its version"
  expect 0 "events of P4 (version 1)" -- "${P[@]}" events --role IND --at 2026-03-05 P4
  contains "$T/out" "sluit" "P4 may close on version 1's threshold"
  expect 2 "migrate-profile needs an actor" -- "${P[@]}" migrate-profile P4
  expect 0 "migrate P4 to the latest version" -- "${P[@]}" migrate-profile --actor beheer --at 2026-03-05 P4
  contains "$T/out" "P4: profile loc version 1 -> 2 (journal seq" "the step is reported"
  expect 0 "migrate P4 again" -- "${P[@]}" migrate-profile --actor beheer --at 2026-03-05 P4
  contains "$T/out" "P4 already runs on profile loc version 2; nothing written" "nothing twice"
  expect 1 "P4 may no longer close (version 2)" -- "${P[@]}" fire --role IND --at 2026-03-06 P4 sluit
  expect 0 "show P4's history" -- "${P[@]}" show P4
  contains "$T/out" "libcase:profile .*beheer" "the migration is journalled"
  expect 0 "verify after the migration" -- "${P[@]}" verify
  contains "$T/out" "3 case(s), 7 journal row(s), 0 problem(s)" "the migrated case replays clean"
  expect 3 "migrate to a version that does not exist" -- "${P[@]}" migrate-profile --actor b --version 9 P2
  expect 0 "report on the store with two profile versions" -- "${P[@]}" report --at 2026-03-06 --format json
  # Issue 12 §13: case ids are printable UTF-8 without spaces, at every entry point;
  # CSV and JSON Lines refuse the same things (unknown or repeated fields, bad ids).
  expect 5 "new with a tab in the id" -- "$CASECTL" new --workflow aanmelding_demo --role IND --at 2026-03-02 $'ZT\t1'
  contains "$T/err" "is a tab (U+0009)" "the tab is named"
  expect 5 "new with an id that is not UTF-8" -- "$CASECTL" new --workflow aanmelding_demo --role IND --at 2026-03-02 $'ZU\xff'
  contains "$T/err" "not valid UTF-8" "the bad byte is named, not 'out of memory'"
  expect 5 "new with an actor that is not UTF-8" -- "$CASECTL" new --workflow aanmelding_demo --role IND --at 2026-03-02 --actor $'a\xff' ZU2
  contains "$T/err" "the actor: byte 2 (0xFF) is not valid UTF-8" "the actor's bad byte is named"
  # Issue 15 review: an actor with a line break printed a forged history row (one that
  # looked fired by the clock) in show; every journal text is one line of printable text.
  expect 5 "new with a line break in the actor" -- "$CASECTL" new --workflow aanmelding_demo --role IND --at 2026-03-02 --actor $'a\n     9 2026-03-02 14:00  verlopen   -   timer' ZU3
  contains "$T/err" "the actor: byte 2 is a line break (U+000A)" "the line break is named"
  printf '{"time":"2026-03-19T10:00","case":"ZI7","event":"create","workflow":"aanmelding_demo","role":"IND"}\n{"time":"2026-03-19T10:00","case":"ZI8","event":"create","workflow":"aanmelding_demo","role":"IND","actor":"x\\u001b[2Ky"}\n' >"$T/escactor.jsonl"
  expect 5 "import a row whose actor holds ESC" -- "$CASECTL" import "$T/escactor.jsonl"
  contains "$T/err" "escactor.jsonl:2: column 'actor': byte 2 is a control character (U+001B)" "the row and column are named"
  expect 3 "nothing of that import was written" -- "$CASECTL" show ZI7
  printf 'time,case,event,role,workflow\n2026-03-19T10:00,ZI1,create,IND,aanmelding_demo\n2026-03-19T10:00,"ZI\t2",create,IND,aanmelding_demo\n' >"$T/tabid.csv"
  expect 5 "import a CSV row with a tab in its id" -- "$CASECTL" import "$T/tabid.csv"
  contains "$T/err" "tabid.csv:3: invalid case id: byte 3 of the case id is a tab" "the CSV row is named"
  printf '{"time":"2026-03-19T10:00","case":"ZI1","event":"create","workflow":"aanmelding_demo","role":"IND"}\n{"time":"2026-03-19T10:00","case":"ZI\\n2","event":"create","workflow":"aanmelding_demo","role":"IND"}\n' >"$T/nlid.jsonl"
  expect 5 "import a JSON Lines row with a newline in its id" -- "$CASECTL" import "$T/nlid.jsonl"
  contains "$T/err" "nlid.jsonl:2: invalid case id: byte 3 of the case id is a line break" "the JSONL row is named"
  printf '{"time":"2026-03-19T10:00","case":"ZI1","event":"create","workflow":"aanmelding_demo","role":"IND","role":"COA"}\n' >"$T/dup.jsonl"
  expect 5 "import a JSON Lines row with a key twice" -- "$CASECTL" import "$T/dup.jsonl"
  contains "$T/err" "dup.jsonl:1:.*duplicate object key" "the repeated key is refused"
  printf '{"time":"2026-03-19T10:00","case":"ZI1","event":"create","workflow":"aanmelding_demo","role":"IND","paylaod":{}}\n' >"$T/unknown.jsonl"
  expect 5 "import a JSON Lines row with an unknown key" -- "$CASECTL" import "$T/unknown.jsonl"
  contains "$T/err" 'unknown.jsonl:1: unknown key "paylaod"' "the unknown key is refused"
  printf 'time,case,event,role,workflow,notes\n2026-03-19T10:00,ZI1,create,IND,aanmelding_demo,x\n' >"$T/unknown.csv"
  expect 5 "import a CSV with an unknown column" -- "$CASECTL" import "$T/unknown.csv"
  contains "$T/err" "unknown.csv:1: unknown column 'notes'" "the unknown column is refused"
  printf 'time,case,event,role,role,workflow\n2026-03-19T10:00,ZI1,create,IND,COA,aanmelding_demo\n' >"$T/dup.csv"
  expect 5 "import a CSV with a column twice" -- "$CASECTL" import "$T/dup.csv"
  contains "$T/err" "dup.csv:1: column 'role' is named twice" "the repeated column is refused"
  printf 'time,case,event,role,workflow,actor\n2026-03-19T10:00,ZI1,create,IND,aanmelding_demo,\xff\n' >"$T/latin.csv"
  expect 5 "import a CSV field that is not UTF-8" -- "$CASECTL" import "$T/latin.csv"
  contains "$T/err" "latin.csv:2: column 'actor' is not valid UTF-8" "the bad field is named"
  expect 3 "none of the refused files created a case" -- "$CASECTL" show ZI1
  # Issue 15.10/15.11: numbers are range-checked, NUL bytes and the clock's actor refused.
  printf '{"time":"2026-03-19T10:00","case":"Z8","event":"create","workflow":"aanmelding_demo","version":4294967297,"role":"IND"}\n' >"$T/ver.jsonl"
  expect 5 "import a version past 2^31" -- "$CASECTL" import "$T/ver.jsonl"
  contains "$T/err" "ver.jsonl:1: version '4294967297' is too large" "the version is not wrapped"
  printf 'time,case,event,role,workflow,version\n2026-03-19T10:00,Z8,create,IND,aanmelding_demo,9223372036854775807\n' >"$T/ver.csv"
  expect 5 "import a CSV version past 2^31" -- "$CASECTL" import "$T/ver.csv"
  contains "$T/err" "too large" "the CSV version is not wrapped"
  printf '{"time":"@9000000000000000000","case":"Z8","event":"create","workflow":"aanmelding_demo","role":"IND"}\n{"time":9000000000000000000,"case":"Z8","event":"create","workflow":"aanmelding_demo","role":"IND"}\n' >"$T/far9999.jsonl"
  expect 5 "import a time past the year 9999" -- "$CASECTL" import "$T/far9999.jsonl"
  contains "$T/err" "far9999.jsonl:1: time '@9000000000000000000' is not a date or time" "an @time out of range"
  contains "$T/err" "far9999.jsonl:2: time" "an integer time out of range"
  printf 'time,case,event,role,workflow\n2026-03-19T10:00,Z8,create,IND,aanmelding_demo\n2026-03-20T10:00,Z8,incident,COA\0hidden,\n' >"$T/nul.csv"
  expect 5 "import a CSV with a NUL byte" -- "$CASECTL" import "$T/nul.csv"
  contains "$T/err" "nul.csv:3: column 'role' holds a NUL byte" "the NUL is not a silent cut"
  printf '{"time":"2026-03-19T10:00","case":"Z8","event":"create","workflow":"aanmelding_demo","role":"IND\0x"}\n{"time":"2026-03-19T10:00","case":"Z8","event":"create","workflow":"aanmelding_demo","role":"IND\\u0000x"}\n' >"$T/nul.jsonl"
  expect 5 "import JSON Lines with NUL bytes" -- "$CASECTL" import "$T/nul.jsonl"
  contains "$T/err" "nul.jsonl:1:" "a raw NUL is an error"
  contains "$T/err" "nul.jsonl:2:" "an escaped NUL is an error"
  printf '{"time":"2026-03-19T10:00","case":"Z4","event":"incident","role":"COA","actor":"timer"}\n' >"$T/clock.jsonl"
  expect 5 "import a person's row as the clock" -- "$CASECTL" import "$T/clock.jsonl"
  contains "$T/err" 'actor "timer" is reserved' "the reserved actor is explained"
  expect 5 "fire as the clock" -- "$CASECTL" fire --role COA --actor timer Z4 incident
  contains "$T/err" "reserved for the clock" "fire refuses the clock's actor"
  ;;
copy)
  # casectl copy moves the pilot's store into a new one (on PostgreSQL when
  # $CASE_TEST_STORE names a server: the CTest fixture's cluster), which verifies
  # clean and gives the same report; and back into a new SQLite file.
  pilot_store >"$T/log" 2>&1 || { cat "$T/log"; bad "pilot replay"; }
  "$CASECTL" report --at 2023-06-15 >"$T/report.txt" || bad "report"
  if [[ -n ${CASE_TEST_STORE:-} && ${CASE_TEST_STORE} != sqlite ]]; then
    schema=cli_copy_$$
    sep='&'; [[ $CASE_TEST_STORE == *'?'* ]] || sep='?'
    TARGET="$CASE_TEST_STORE${sep}schema=$schema"
    trap 'psql -X -q "$CASE_TEST_STORE" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1; rm -rf "$T"' EXIT
  else
    TARGET=$T/copy.db
  fi
  expect 0 "copy the pilot store" -- "$CASECTL" copy --from "$CASECTL_STORE" --to "$TARGET"
  contains "$T/out" "260 cases" "the copy names what it copied"
  contains "$T/out" "260 case(s), [0-9]* journal row(s), 0 problem(s)" "the copy verifies clean"
  expect 0 "report on the copy" -- "$CASECTL" report --store "$TARGET" --at 2023-06-15
  if cmp -s "$T/out" "$T/report.txt"; then ok "the copy gives the same report"; else bad "the copy's report differs"; diff "$T/report.txt" "$T/out" | head -5; fi
  expect 5 "copy into a store that is not empty" -- "$CASECTL" copy --from "$CASECTL_STORE" --to "$TARGET"
  contains "$T/err" "not empty" "the refusal says why"
  expect 0 "copy it back into a new SQLite file" -- "$CASECTL" copy --quiet --json --from "$TARGET" --to "$T/back.db"
  contains "$T/out" '"problems": \[\]' "the copy of the copy verifies clean"
  expect 0 "report on the copy of the copy" -- "$CASECTL" report --store "$T/back.db" --at 2023-06-15
  if cmp -s "$T/out" "$T/report.txt"; then ok "the copy of the copy gives the same report"; else bad "the copy of the copy's report differs"; fi
  expect 2 "copy without --to" -- "$CASECTL" copy --from "$CASECTL_STORE"
  expect 2 "copy onto itself" -- "$CASECTL" copy --from "$CASECTL_STORE" --to "$CASECTL_STORE"
  expect 3 "copy from a missing store" -- "$CASECTL" copy --from "$T/none.db" --to "$T/new.db"
  if [[ -e $T/new.db ]]; then bad "a failed copy left a target"; else ok "a failed copy creates no target"; fi
  # A password in a location never reaches a message, whichever command prints it
  # (casectl used to name the store as given before the library's *** message).
  nosrv='host=/tmp/libcase-no-server port=5432 user=u password=geheim'
  nouri='postgresql://u:geheim@/postgres?host=/tmp/libcase-no-server&password=geheim'
  for loc in "$nosrv" "$nouri"; do
    expect 4 "copy to a server that is down" -- "$CASECTL" copy --from "$CASECTL_STORE" --to "$loc"
    if grep -q geheim "$T/err" "$T/out"; then bad "the password is shown: $(cat "$T/err")"; else ok "no password shown"; fi
    contains "$T/err" '\*\*\*' "the location is shown with *** for the password"
    expect 4 "list on a server that is down" -- "$CASECTL" list --store "$loc"
    if grep -q geheim "$T/err" "$T/out"; then bad "the password is shown: $(cat "$T/err")"; else ok "no password shown"; fi
  done
  ;;
pilot)
  pilot_store >"$T/log" 2>&1 || { cat "$T/log"; bad "pilot replay"; }
  "$CASECTL" report --at 2023-06-15 --format json >"$T/report.json" || bad "report"
  "$CASECTL" verify --quiet || bad "verify the pilot store"
  # The store carries its definitions, their Lua modules and the location profiles:
  # a copy of the .db alone, in another directory, with no flags, verifies clean and
  # its guards read the stored profiles (meldpunt: Ter Apel runs the interventieteam
  # lane, Budel does not).
  mkdir -p "$T/elsewhere"
  if [[ -n ${pg_schema:-} ]]; then # the store in PostgreSQL: the file made from it
    "$CASECTL" copy --quiet --from "$CASECTL_STORE" --to "$T/elsewhere/copy.db" || bad "copy out"
  else
    cp "$CASECTL_STORE" "$T/elsewhere/copy.db"
  fi
  (
    cd "$T/elsewhere" && unset CASECTL_STORE && fails=0
    C=(--store copy.db --at 2023-06-16)
    expect 0 "verify a copied store without flags" -- "$CASECTL" verify --store copy.db
    contains "$T/out" "260 case(s), [0-9]* journal row(s), 0 problem(s)" "the copy verifies clean"
    expect 0 "new at ter_apel on the copy" -- "$CASECTL" new "${C[@]}" --workflow asielprocedure@1 --location ter_apel --role IND NT1
    expect 0 "new at budel on the copy" -- "$CASECTL" new "${C[@]}" --workflow asielprocedure@1 --location budel --role IND NB1
    expect 0 "events at ter_apel" -- "$CASECTL" events "${C[@]}" --role COA NT1
    contains "$T/out" "gemeld_bij_meldpunt" "the stored ter_apel profile enables the meldpunt"
    # A stored case runs on the profile version it is pinned to (issue 12 §11): a
    # --profile given to a read command cannot change what it may do (it used to,
    # so that events offered what fire then refused).
    expect 0 "events at ter_apel with budel's file as --profile" -- "$CASECTL" events "${C[@]}" --role COA --profile "ter_apel=$SRC/lua/locations/budel.lua" NT1
    contains "$T/out" "gemeld_bij_meldpunt" "the pinned ter_apel version still decides" 
    expect 0 "fire the meldpunt at ter_apel (guard reads the stored profile)" -- "$CASECTL" fire "${C[@]}" --role COA NT1 gemeld_bij_meldpunt
    contains "$T/out" "geschiktheid_beoordelen" "the ter_apel case is assessed for the lane"
    expect 1 "fire the meldpunt at budel (its stored profile says no)" -- "$CASECTL" fire "${C[@]}" --role COA NB1 gemeld_bij_meldpunt
    contains "$T/err" "guard 'interventieteam_mogelijk' is false" "budel's guard is false"
    expect 0 "verify the copy after the new events" -- "$CASECTL" verify --store copy.db
    if [[ -e copy.db.casectl.json ]]; then bad "a sidecar appeared next to the copy"; else ok "still no sidecar"; fi
    exit $fails
  ) || fails=$((fails + $?))
  # A term's legal source stays on its line, in its brackets.
  "$CASECTL" show --at 2023-06-15 TA-0250 >"$T/show.txt" || bad "show TA-0250"
  contains "$T/show.txt" "dublin_zienswijze .*\[Vb 2000 art. 3.109c\]$" "the legal source is bracketed on the term's line"
  if grep -q '^\]' "$T/show.txt"; then bad "show breaks a line inside the brackets"; else ok "no line starts with ]"; fi
  # Importing the same log again, under another name, adds nothing and says so exactly.
  cp examples/pilot/pilot.jsonl "$T/again.jsonl"
  "$CASECTL" import --json "$T/again.jsonl" >"$T/again.json" || bad "re-import"
  python3 - "$T/again.json" examples/pilot/expected.json <<'PY' || fails=$((fails + 1))
import json, sys
r = json.load(open(sys.argv[1]))
n = json.load(open(sys.argv[2]))["events"]  # the log's rows, as generate.lua wrote them
ok = r["created"] == 0 and r["fired"] == 0 and r["timers"] == 0 and r["skipped"] == r["rows"] == n
print("ok  " if ok else "FAIL", "re-import: nothing written, all %d rows already there:" % n, r)
sys.exit(0 if ok else 1)
PY
  python3 - "$T/report.json" examples/pilot/expected.json <<'PY' || fails=$((fails + 1))
import json, sys
r = json.load(open(sys.argv[1])); e = json.load(open(sys.argv[2]))
counts = {c["name"]: c for c in r["counts"]}
checks = [
  ("report version", r["report"], "libcase.report.v2"),
  ("cases", r["cases"]["total"], e["cases"]), ("closed", r["cases"]["closed"], e["closed"]),
  ("open", r["cases"]["open"], e["open"]), ("transferred", counts["overgedragen"]["cases"], e["transferred"]),
  ("appeals lodged", counts["beroep"]["cases"], e["appeals"]["lodged"]),
  ("open cases listed", len(r["open_cases"]), e["open"]),
  ("open cases per state add up", sum(r["open_by_state"].values()), e["open"]),
  ("closed chart holds only final states", sorted(r["closed"]["by_state"]),
   ["dossier_gesloten", "overgedragen", "statushouder", "vertrokken"]),
  # docs/casectl.md: 56 terms overdue, 40 of them the court's, 7 running out within 7 days (one the applicant's window to ask a vovo)
  ("terms overdue", r["terms"]["overdue"], 56), ("court terms overdue", r["terms"]["court_overdue"], 40),
  ("terms due soon", r["terms"]["due_soon"], 7),
  ("terms listed", len(r["terms"]["items"]), 63),
  # The applicant's terms (to appeal, to ask a vovo) are not the court's (Awb 6:7, 8:81).
  ("court terms are the rulings only", sorted({i["deadline"] for i in r["terms"]["items"] if i["court"]}),
   ["uitspraaktermijn"]),
  ("the appeal term's agency", sorted({i["agency"] for i in r["terms"]["items"]
                                       if i["deadline"] in ("beroepstermijn_overdracht", "verzoektermijn_overdracht")}),
   ["VREEMDELING"]),
  ("per location", sorted(r["by_location"]), ["ter_apel"]),
  ("track label", r["track"]["label"], "spoor"),
  ("problems", r["problems"], []),
]
for k in ("open", "ongegrond", "gegrond", "ended_without_ruling"):
  checks.append(("appeals " + k, counts["beroep"]["outcomes"].get(k, 0), e["appeals"][k]))
for t, v in e["by_track"].items():
  for k in ("cases", "open", "closed"):
    checks.append(("track %s %s" % (t, k), r["by_track"].get(t, {}).get(k, 0), v[k]))
# Terms by urgency: overdue first, the most overdue first, then due today, then due soon.
rank = {"overdue": 0, "due_today": 1, "due_soon": 2}
keys = [(rank[i["status"]], i["due"]) for i in r["terms"]["items"]]
checks.append(("terms in order of urgency", keys == sorted(keys), True))
oc = r["open_cases"]
most = max(c["next_term"]["days_overdue"] for c in oc
           if c["next_term"] and c["next_term"]["status"] == "overdue")
checks.append(("most urgent case first", (oc[0]["next_term"]["status"], oc[0]["next_term"]["days_overdue"]),
               ("overdue", most)))
checks.append(("every open case has days and who must act",
               all(c["days_open"] >= 0 and c["must_act"] for c in oc), True))
checks.append(("new cases per week add up", sum(w["cases"] for w in r["trends"]["new_per_week"]), e["cases"]))
checks.append(("overdue at the reference date is the last week's",
               r["trends"]["overdue_per_week"][-1]["overdue"], 56))
checks.append(("signals per source",
               {k: v["total"] for k, v in r["trends"]["signals_per_source"].items()}, e["signals_per_source"]))
lanes = {x["lane"]: x for x in r["lead_time_days"] if x["track"] == "all"}
bad = 0
for name, got, want in checks:
  print(("ok  " if got == want else "FAIL"), name, got, "expected", want); bad += got != want
acc, reg = lanes["accelerated"]["median"], lanes["regular"]["median"]
lim = e["lead_time_days"]
ok = lim["accelerated"]["median_min"] <= acc <= lim["accelerated"]["median_max"] and reg >= lim["regular"]["median_min"]
print("ok  " if ok else "FAIL", "lead time median accelerated %.1f, regular %.1f" % (acc, reg)); bad += not ok
sys.exit(1 if bad else 0)
PY
  # The report at an earlier date replays the journal: its cases and terms are those of
  # a store that only ever got the log up to that date (import --until ticks to it).
  for when in 2022-11-15 2023-03-01; do
    mkdir -p "$T/upto-$when"
    (
      export CASECTL_STORE="$T/upto-$when/s.db"
      "$CASECTL" init --quiet --profile ter_apel=lua/locations/ter_apel.lua --profile budel=lua/locations/budel.lua &&
      "$CASECTL" load --quiet workflows/asielprocedure.yaml workflows/asielprocedure-v2.yaml &&
      "$CASECTL" import --quiet --until "$when" examples/pilot/pilot.jsonl &&
      "$CASECTL" report --at "$when" --format json >"$T/upto-$when/report.json"
    ) || bad "store up to $when"
    "$CASECTL" report --at "$when" --format json >"$T/at-$when.json" || bad "report --at $when"
    python3 - "$T/at-$when.json" "$T/upto-$when/report.json" "$when" <<'PY' || fails=$((fails + 1))
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
bad = 0
for key in ("cases", "open_by_state", "closed", "counts", "terms", "open_cases", "by_location"):
  same = a[key] == b[key]
  print("ok  " if same else "FAIL", "report --at %s: %s as in a store that stopped then" % (sys.argv[3], key))
  bad += not same
n = a["terms"]["overdue"] + a["terms"]["due_soon"] + a["terms"]["due_today"]
print("ok  " if n > 0 else "FAIL", "report --at %s has %d urgent terms" % (sys.argv[3], n)); bad += n == 0
sys.exit(1 if bad else 0)
PY
  done
  # Filters and the sort, in every format.
  "$CASECTL" report --at 2023-06-15 --format json --agency RECHTBANK --sort location >"$T/f.json" || bad "filtered report"
  python3 - "$T/f.json" "$T/report.json" <<'PY' || fails=$((fails + 1))
import json, sys
r = json.load(open(sys.argv[1])); full = json.load(open(sys.argv[2]))
oc = r["open_cases"]
want = [c["case"] for c in full["open_cases"] if "RECHTBANK" in c["must_act"].split("/")]
ok = (sorted(c["case"] for c in oc) == sorted(want) and len(want) >= 40 and all("RECHTBANK" in c["must_act"].split("/") for c in oc)
      and all(i["agency"] == "RECHTBANK" for i in r["terms"]["items"])
      and r["cases"]["total"] == 260 and r["sort"] == "location")
print("ok  " if ok else "FAIL", "--agency RECHTBANK keeps the cases the court must act on and its terms; the summary counts all", len(oc))
sys.exit(0 if ok else 1)
PY
  "$CASECTL" report --at 2023-06-15 --format csv --procesregisseur PR-3 >"$T/pr3.csv" || bad "csv report"
  contains "$T/pr3.csv" "^case,workflow,location,procesregisseur,state," "the cases CSV has a header"
  if awk -F, 'NR > 1 && $4 != "PR-3" {exit 1}' "$T/pr3.csv" && (($(wc -l <"$T/pr3.csv") > 1)); then ok "--procesregisseur PR-3 keeps only PR-3's cases"; else bad "CSV filter"; fi
  "$CASECTL" report --at 2023-06-15 --format csv --table terms >"$T/terms.csv" || bad "terms csv"
  if (($(wc -l <"$T/terms.csv") == 64)); then ok "terms CSV: 63 terms and a header"; else bad "terms CSV has $(wc -l <"$T/terms.csv") lines"; fi
  "$CASECTL" report --at 2023-06-15 >"$T/report.txt" || bad "text report"
  contains "$T/report.txt" "56 overdue (40 the court's)" "the text report counts the court's overdue terms"
  # The agency table's columns line up however long the agency (RECHTBANK/DTV/KMAR).
  widths=$(awk '/^Terms by urgency/ {on=1; next} on && /^  agency/ {tab=1} tab && /^$/ {exit} tab {sub(/  \(court\)$/, ""); print length($0)}' "$T/report.txt" | sort -u | wc -l)
  if ((widths == 1)); then ok "the agency column fits the longest agency"; else bad "agency table lines differ in width"; sed -n '/^Terms by urgency/,/^$/p' "$T/report.txt"; fi
  expect 2 "an unknown sort" -- "$CASECTL" report --sort nonsense
  expect 2 "an unknown table" -- "$CASECTL" report --format csv --table nope
  ;;
html)
  # Needs Debian's chromium (scripts/bootstrap installs it): missing, the test fails.
  CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
  if [[ -z $CHROMIUM ]]; then bad "chromium is not installed (run scripts/bootstrap)"; echo "$NAME: $fails failure(s)"; exit 1; fi
  pilot_store >"$T/log" 2>&1 || { cat "$T/log"; bad "pilot replay"; }
  "$CASECTL" report --at 2023-06-15 --format html -o "$T/report.html" || bad "report html"
  # Self-contained: an inline script and inline SVG, nothing loaded from elsewhere.
  if grep -qiE '<script[^>]*src|<link|@font-face|@import|url\(' "$T/report.html" ||
     grep -oiE 'https?://[^" ]*' "$T/report.html" | grep -qv '^http://www.w3.org/2000/svg$'; then bad "the page loads something from outside"; else ok "self-contained"; fi
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$T/chrome" \
    --dump-dom "file://$T/report.html" >"$T/dom.html" 2>"$T/chrome.log" || { bad "chromium"; tail -5 "$T/chrome.log"; }
  for id in chart-states chart-closed chart-tracks chart-leadtime chart-weeks chart-overdue chart-leadmonth chart-signals chart-locations; do
    contains "$T/dom.html" "<svg[^>]*id=\"$id\"" "chart $id is in the DOM"
  done
  n=$(grep -o '<rect class="bar"' "$T/dom.html" | wc -l)
  if ((n >= 100)); then ok "$n bars drawn"; else bad "only $n bars drawn"; fi
  n=$(grep -o '<tr class="[a-z_]*" data-case=' "$T/dom.html" | wc -l)
  if ((n == 80)); then ok "80 open cases listed"; else bad "$n open cases listed"; fi
  # The closed-cases chart holds final states only (it once held open ones too).
  sed -n '/id="chart-closed"/,/<\/svg>/p' "$T/dom.html" >"$T/closed.svg"
  if grep -q 'beroep\|dublin\|wacht' "$T/closed.svg"; then bad "an open state in the closed-cases chart"; else ok "the closed-cases chart has only final states"; fi
  ;;
defs)
  # Issue 12: definitions, profiles and stores that must not surprise their user.
  # 12.1: a delay of 0 that re-enters its state is warned about, and a tick or fire
  # on such a case stops at the expiry limit, writing nothing for it.
  printf 'workflow: lus\nversion: 1\nroles: [IND]\ninitial: a\nstates:\n  a:\n    after: [{delay: 0 seconds, target: a}]\n    on: {stop: b}\n  b: {final: true}\n' >"$T/lus.yaml"
  expect 0 "validate warns about a zero delay" -- "$CASECTL" validate "$T/lus.yaml"
  contains "$T/err" "lus.yaml:7:21: warning: delay '0 seconds' is zero" "the warning has its position"
  expect 0 "init" -- "$CASECTL" init
  expect 0 "load" -- "$CASECTL" load "$T/lus.yaml"
  expect 0 "new" -- "$CASECTL" new --workflow lus --role IND --at 2026-03-02 L1
  expect 1 "tick stops at the expiry limit" -- timeout 60 "$CASECTL" tick --at 2026-03-03
  contains "$T/err" "case 'L1': more than 1000 timer expiries in one tick" "tick names the case"
  expect 1 "fire stops at the expiry limit" -- timeout 60 "$CASECTL" fire --role IND --at 2026-03-03 L1 stop
  contains "$T/err" "in one fire" "fire says why"
  expect 0 "show" -- "$CASECTL" show --json L1
  if python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["history"]; sys.exit(len(h) != 1)' "$T/out"; then ok "nothing but the creation is journalled"; else bad "rows were journalled for the looping case"; fi
  # 12.2: who creates a case is a declared role, in new and in import.
  expect 2 "new without a role" -- "$CASECTL" new --workflow lus --at 2026-03-02 L2
  contains "$T/err" "--role ROLE is required" "new says the role is required"
  expect 5 "new as an undeclared role" -- "$CASECTL" new --workflow lus --role HACKER --at 2026-03-02 L2
  contains "$T/err" "'HACKER' is not a role of lus version 1 (declared: IND)" "new names the declared roles"
  printf '{"time":"2026-03-02","case":"L3","event":"create","workflow":"lus","role":"HACKER","actor":"x"}\n' >"$T/hacker.jsonl"
  expect 1 "import a create by an undeclared role" -- "$CASECTL" import --quiet "$T/hacker.jsonl"
  contains "$T/err" "role 'HACKER' is not declared by workflow 'lus'" "import names the role"
  expect 3 "the case was not created" -- "$CASECTL" show L3
  expect 0 "new --help says what new does" -- "$CASECTL" new --help
  contains "$T/out" "Creates case CASE_ID on a stored workflow" "new --help describes new"
  # 12.5/12.6: people are offered only events they may fire, asked with the actor;
  # explain prints every blocker and writes nothing.
  A=(env CASECTL_STORE="$T/ask.db" "$CASECTL")
  expect 0 "init the ask store" -- "${A[@]}" init
  expect 0 "load ask" -- "${A[@]}" load tests/data/ask/ask.yaml
  expect 0 "new A1" -- "${A[@]}" new --workflow ask --role IND --at 2026-03-02 A1
  expect 0 "events as COA" -- "${A[@]}" events --json --role COA --at 2026-03-02 A1
  if grep -q 'done.state\|verlopen' "$T/out"; then bad "events offers the engine's events"; else ok "events offers no engine events"; fi
  expect 0 "events as IND by ind-1" -- "${A[@]}" events --role IND --actor ind-1 --at 2026-03-02 A1
  contains "$T/out" "^besluit" "the actor's guard passes"
  expect 0 "events as IND by ind-2" -- "${A[@]}" events --role IND --actor ind-2 --at 2026-03-02 A1
  if grep -q '^besluit' "$T/out"; then bad "besluit offered to another actor"; else ok "besluit not offered to another actor"; fi
  expect 0 "list --role --actor" -- "${A[@]}" list --json --role IND --actor ind-1 --at 2026-03-02
  contains "$T/out" '"besluit"' "list sees the actor"
  expect 1 "explain a refused event" -- "${A[@]}" explain --role IND --actor ind-2 --at 2026-03-02 A1 besluit
  contains "$T/out" "would be refused (1 blocker)" "explain counts the blockers"
  contains "$T/out" "guard .* is false" "explain names the guard"
  expect 0 "explain an accepted event" -- "${A[@]}" explain --role IND --actor ind-1 --at 2026-03-02 A1 besluit
  contains "$T/out" "would be accepted" "explain says it would be accepted"
  expect 1 "explain an engine event" -- "${A[@]}" explain --json --role IND --at 2026-03-02 A1 done.state.zaak
  contains "$T/out" '"reserved"' "explain names the reserved event"
  expect 5 "explain as an undeclared role" -- "${A[@]}" explain --role HACKER A1 besluit
  expect 2 "explain without a role" -- "${A[@]}" explain A1 besluit
  if python3 -c 'import sqlite3,sys; n=sqlite3.connect(sys.argv[1]).execute("select count(*) from refused").fetchone()[0]; sys.exit(n != 0)' "$T/ask.db"; then ok "explain wrote no refused row"; else bad "explain wrote a refused row"; fi
  # An undeclared role is the same fault (exit 5, the declared roles named, nothing
  # written) in every command that takes --role for a case, fire too (it exited 1).
  expect 5 "fire as an undeclared role" -- "${A[@]}" fire --role HACKER --at 2026-03-02 A1 besluit
  contains "$T/err" "'HACKER' is not a role of ask version 1 (declared: " "fire names the declared roles"
  expect 5 "migrate-profile as an undeclared role" -- "${A[@]}" migrate-profile --role HACKER --actor x --at 2026-03-02 A1
  expect 5 "token create as an undeclared role" -- "${A[@]}" token create --role HACKER --name h
  expect 3 "new at a location with no profile" -- "${A[@]}" new --workflow ask --role IND --location nergens --at 2026-03-02 A9
  contains "$T/err" "no location profile 'nergens' is stored or loaded" "new says the profile is neither stored nor loaded"
  expect 1 "fire as a declared role no transition admits is a refusal" -- "${A[@]}" fire --role COA --at 2026-03-02 A1 besluit
  expect 0 "explain --help" -- "$CASECTL" explain --help
  contains "$T/out" "every reason" "explain --help says what it does"
  expect 0 "scenario available: sees no engine events" -- "$CASECTL" test --quiet tests/data/ask/ask_scenario.yaml
  # 12.8: wrong files given as the store each get their own message, exit 4.
  : >"$T/empty.db"; mkdir -p "$T/dir.db"; echo "hello world, not a db" >"$T/text.db"
  python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.commit()' "$T/other.db"
  expect 4 "an empty file as the store" -- "$CASECTL" list --store "$T/empty.db"
  contains "$T/err" "^casectl list: store '$T/empty.db': is an empty file (0 bytes), not a libcase store (create the store in it first: casectl init, or CASE_STORE_CREATE) (corrupt data)$" "the empty file's message"
  expect 4 "a write command on an empty file" -- "$CASECTL" new --store "$T/empty.db" --workflow x --role IND Z1
  contains "$T/err" "is an empty file (0 bytes)" "new does not turn an empty file into a store"
  expect 4 "a directory as the store" -- "$CASECTL" show --store "$T/dir.db" Z1
  contains "$T/err" "^casectl show: store '$T/dir.db': is a directory, not a store (expected the SQLite file the store is kept in) (input/output error)$" "the directory's message"
  expect 4 "a text file as the store" -- "$CASECTL" fire --store "$T/text.db" --role IND Z1 x
  contains "$T/err" "^casectl fire: store '$T/text.db': is not a libcase store: not an SQLite database (it starts with \"hello world, not\") (corrupt data)$" "the text file's message"
  if grep -q "synchronous" "$T/err"; then bad "an internal prefix in the message"; else ok "no internal prefix"; fi
  expect 4 "another program's database as the store" -- "$CASECTL" list --store "$T/other.db"
  contains "$T/err" "^casectl list: store '$T/other.db': is not a libcase store: an SQLite database with other tables (corrupt data)$" "the other database's message"
  expect 0 "init makes a store of an empty file" -- "$CASECTL" init --store "$T/empty.db"
  # Global options may stand before the command.
  expect 0 "--store before the command" -- "$CASECTL" --store "$T/ask.db" list --json
  contains "$T/out" '"A1"' "the store before the command is used"
  expect 0 "--store=FILE --json before the command" -- "$CASECTL" --store="$T/ask.db" --json show A1
  contains "$T/out" '"case": "A1"' "both leading options apply"
  expect 2 "a command option before the command" -- "$CASECTL" --role IND list
  contains "$T/err" "is not an option every command takes" "says which options may lead"
  # Every command's --help says what it does (a sentence after the usage lines).
  # Help fits an 80-column terminal (a long command name such as migrate-profile
  # made every line of casectl --help wider): no line of casectl --help or of any
  # COMMAND --help is wider than 79 columns, and each command is one line of the list.
  "$CASECTL" --help >"$T/help" 2>&1
  if awk 'length > 79 {print; bad = 1} END {exit bad}' "$T/help"; then ok "casectl --help fits 79 columns"; else bad "casectl --help has lines over 79 columns"; fi
  if [[ $(sed -n '/^commands:/,/^$/p' "$T/help" | grep -c '^  [a-z]') == $(sed -n '/^commands:/,/^$/p' "$T/help" | grep -c '^ ') ]]; then ok "each command's summary fits its line"; else bad "a command's summary wraps"; fi
  for cmd in $("$CASECTL" --help | sed -n '/^commands:/,/^$/p' | awk '/^  [a-z]/ {print $1}'); do
    "$CASECTL" "$cmd" --help >"$T/help" 2>&1 || bad "$cmd --help exits non-zero"
    if awk 'length > 79 {print; bad = 1} END {exit bad}' "$T/help" >"$T/wide"; then ok "$cmd --help fits 79 columns"; else bad "$cmd --help has lines over 79 columns: $(head -1 "$T/wide")"; fi
    if grep -qE '^  [A-Z][a-z]+ ' "$T/help"; then ok "$cmd --help says what $cmd does"; else bad "$cmd --help has no description"; fi
  done
  # A file the user may only read is no usage error: exit 4, and reading still works.
  if [[ $(id -u) == 0 ]] && command -v runuser >/dev/null; then
    chmod 0755 "$T"; cp "$T/ask.db" "$T/ro.db"; chmod 0444 "$T/ro.db"
    expect 4 "fire on a read-only file" -- runuser -u nobody -- "$CASECTL" fire --store "$T/ro.db" --role IND --at 2026-03-02 A1 klaar
    contains "$T/err" "store '$T/ro.db': is read-only for this user, and this command changes the store" "the read-only message"
    expect 0 "list on the read-only file" -- runuser -u nobody -- "$CASECTL" list --store "$T/ro.db"
  elif [[ $(id -u) != 0 ]]; then
    cp "$T/ask.db" "$T/ro.db"; chmod 0444 "$T/ro.db"
    expect 4 "fire on a read-only file" -- "$CASECTL" fire --store "$T/ro.db" --role IND --at 2026-03-02 A1 klaar
    contains "$T/err" "is read-only for this user" "the read-only message"
  else
    bad "runuser is missing (util-linux): cannot test a read-only file as root"
  fi
  # 12.3: a location profile is checked against the definitions it meets.
  P=tests/data/defs/profiles
  expect 1 "validate with a profile that breaks the workflow" -- "$CASECTL" validate --profile budel=$P/bad_type.lua $P/drempel.yaml
  contains "$T/err" "bad_type.lua:5:5: profile 'budel' sets param 'drempel' to a string" "the profile error has its position"
  expect 0 "validate with a profile that warns" -- "$CASECTL" validate --profile budel=$P/zero_and_typo.lua $P/drempel.yaml
  contains "$T/err" "zero_and_typo.lua:4:5: warning: profile 'budel' sets param 'drempl'" "a misspelt param is warned about"
  contains "$T/err" "zero_and_typo.lua:3:5: warning: profile 'budel' sets param 'wacht' to 0" "a zero term is warned about"
  P2=(env CASECTL_STORE="$T/profile2.db" "$CASECTL")
  expect 0 "init" -- "${P2[@]}" init
  expect 0 "load drempel" -- "${P2[@]}" load $P/drempel.yaml
  expect 0 "init stores a profile that warns" -- "${P2[@]}" init --profile budel=$P/zero_and_typo.lua
  contains "$T/err" "zero_and_typo.lua:3:5: warning: profile 'budel' sets param 'wacht' to 0" "init warns about the stored workflows"
  expect 5 "init with a profile that breaks a stored workflow" -- "${P2[@]}" init --profile budel=$P/bad_type.lua
  contains "$T/err" "bad_type.lua:5:5:" "init names the profile's line"
  PS=(env CASECTL_STORE="$T/profile.db" "$CASECTL")
  expect 0 "init with the profile" -- "${PS[@]}" init --profile budel=$P/bad_type.lua
  expect 5 "load a workflow the stored profile breaks" -- "${PS[@]}" load $P/drempel.yaml
  contains "$T/err" "bad_type.lua:5:5:" "load names the profile's line"
  # Issue 13: SCXML out of the store and back in, with the same model hash.
  X=(env CASECTL_STORE="$T/scxml.db" "$CASECTL")
  Y=(env CASECTL_STORE="$T/scxml2.db" "$CASECTL")
  expect 0 "init the SCXML store" -- "${X[@]}" init
  expect 0 "load the asylum workflow" -- "${X[@]}" load workflows/asielprocedure.yaml
  expect 0 "export-scxml a stored workflow" -- "${X[@]}" export-scxml -o "$T/asiel.scxml" asielprocedure@1
  model=$(sed -n 's/.*(model \([0-9a-f]*\)\.\.\.).*/\1/p' "$T/err" "$T/out" | head -1)
  contains "$T/asiel.scxml" 'xmlns:libcase="urn:libcase:scxml:1"' "the export declares the libcase namespace"
  expect 0 "export-scxml a YAML file to stdout" -- "${X[@]}" export-scxml workflows/asielprocedure.yaml
  contains "$T/out" '<scxml ' "the export is an SCXML document"
  expect 2 "export-scxml --json is a usage error" -- "${X[@]}" export-scxml --json asielprocedure
  expect 3 "export-scxml of an unknown workflow" -- "${X[@]}" export-scxml nope
  expect 0 "init a second store" -- "${Y[@]}" init
  expect 4 "import-scxml without the Lua module (as load)" -- "${Y[@]}" import-scxml "$T/asiel.scxml"
  contains "$T/err" "asiel.scxml:3:" "the missing module is named at its line"
  expect 0 "import-scxml with --lua-root" -- "${Y[@]}" import-scxml --lua-root workflows "$T/asiel.scxml"
  if [[ -n $model ]] && grep -q "model $model" "$T/out" "$T/err"; then ok "import-scxml gives the exported model hash"; else bad "model hash '$model' not kept"; fi
  expect 0 "show the imported workflow's case" -- "${Y[@]}" new --workflow asielprocedure --role IND --at 2026-03-02 S1
  expect 5 "import-scxml of a bad document" -- "${Y[@]}" import-scxml tests/data/scxml/invalid/bad_raise.scxml
  contains "$T/err" "bad_raise.scxml:4:28:" "the error has file:line:col"
  expect 0 "import-scxml of an editor's chart" -- "${Y[@]}" import-scxml tests/data/scxml/editor_chart.scxml
  ;;
proof)
  # Issue 15 §7-9, issue 12 §10: verify finds what is changed, checkpoints prove the rest.
  Q=examples/quickstart/aanmelding.yaml
  expect 0 "init" -- "$CASECTL" init --quiet
  expect 0 "load" -- "$CASECTL" load --quiet $Q
  for z in Z1 Z2 Z3; do "$CASECTL" new --quiet --workflow aanmelding_demo --role IND --at 2026-03-02 $z; done
  expect 0 "verify a clean store" -- "$CASECTL" verify
  contains "$T/out" "3 case(s), 3 journal row(s), 0 problem(s)" "verify counts cases and rows"
  expect 0 "keygen" -- "$CASECTL" keygen --out "$T/key.pem" --pubout "$T/key.pub"
  if [[ $(stat -c %a "$T/key.pem") == 600 ]]; then ok "the private key is mode 0600"; else bad "key mode $(stat -c %a "$T/key.pem")"; fi
  expect 5 "keygen never overwrites a key" -- "$CASECTL" keygen --out "$T/key.pem"
  contains "$T/err" "never overwritten" "keygen says why"
  expect 2 "checkpoint without --key" -- "$CASECTL" checkpoint
  expect 3 "checkpoint with a missing key file" -- "$CASECTL" checkpoint --key "$T/none.pem"
  expect 0 "checkpoint" -- "$CASECTL" checkpoint --key "$T/key.pem" --at 2026-03-02 --out "$T/cp1.json"
  contains "$T/out" "checkpoint of 3 journal row(s)" "the checkpoint covers the journal"
  # The signature is plain Ed25519 over six lines: openssl checks it without libcase.
  python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
c = json.load(open(t + "/cp1.json"))
assert c["checkpoint"] == "libcase.checkpoint.v2", c["checkpoint"]
open(t + "/msg.txt", "w").write("libcase.checkpoint.v2\norigin %s\nsize %d\ntime %d\nroot %s\ncalendar %s\n"
                                % (c["origin"], c["size"], c["time"], c["root"], c["calendar"]))
open(t + "/sig.bin", "wb").write(bytes.fromhex(c["signature"]))
PY
  expect 0 "openssl verifies the checkpoint's signature" -- openssl pkeyutl -verify -pubin -inkey "$T/key.pub" -rawin -in "$T/msg.txt" -sigfile "$T/sig.bin"
  "$CASECTL" new --quiet --workflow aanmelding_demo --role IND --at 2026-03-02 Z4
  expect 0 "a later checkpoint --since the first" -- "$CASECTL" checkpoint --key "$T/key.pem" --since "$T/cp1.json" --out "$T/cp2.json"
  expect 0 "check-checkpoint: the later extends the first" -- "$CASECTL" check-checkpoint --pubkey "$T/key.pub" "$T/cp1.json" "$T/cp2.json"
  contains "$T/out" "extends" "check-checkpoint says so"
  expect 1 "check-checkpoint the other way round" -- "$CASECTL" check-checkpoint "$T/cp2.json" "$T/cp1.json"
  contains "$T/err" "truncated" "and says why"
  "$CASECTL" keygen --quiet --out "$T/other.pem" --pubout "$T/other.pub"
  expect 1 "check-checkpoint with another public key" -- "$CASECTL" check-checkpoint --pubkey "$T/other.pub" "$T/cp1.json" "$T/cp2.json"
  # One row proven to someone who holds only the checkpoint (a court, an agency).
  expect 0 "prove a row in the first checkpoint's tree" -- "$CASECTL" prove --checkpoint "$T/cp1.json" --out "$T/row2.json" 2
  expect 0 "check the row with the checkpoint alone" -- "$CASECTL" check-checkpoint --pubkey "$T/key.pub" --row "$T/row2.json" "$T/cp1.json"
  contains "$T/out" "journal row 2 (case Z2) is, as shown, among the 3 rows" "the row is proven"
  sed 's/"role": "IND"/"role": "COA"/' "$T/row2.json" >"$T/row2-edited.json"
  expect 1 "a row shown with other content" -- "$CASECTL" check-checkpoint --row "$T/row2-edited.json" "$T/cp1.json"
  contains "$T/err" "the row was changed" "check-checkpoint says the row was changed"
  expect 1 "the row against another checkpoint's tree" -- "$CASECTL" check-checkpoint --row "$T/row2.json" "$T/cp2.json"
  expect 3 "prove a row that is not there" -- "$CASECTL" prove 99
  expect 0 "verify --checkpoint" -- "$CASECTL" verify --checkpoint "$T/cp1.json" --pubkey "$T/key.pub"
  contains "$T/out" "signature valid (the key given), the journal extends it" "verify proves the checkpoint"
  expect 1 "verify --checkpoint with another key" -- "$CASECTL" verify --checkpoint "$T/cp1.json" --pubkey "$T/other.pub"
  expect 2 "--pubkey without --checkpoint" -- "$CASECTL" verify --pubkey "$T/key.pub"
  sed 's/"size": 3/"size": 2/' "$T/cp1.json" >"$T/forged.json"
  expect 1 "a forged checkpoint" -- "$CASECTL" verify --checkpoint "$T/forged.json"
  contains "$T/err" "signature is not valid" "the forgery is named"
  # A consistent truncation: the newest case removed whole. Without a checkpoint it
  # looks like a true store; with one it is found.
  cp "$CASECTL_STORE" "$T/cut.db"
  sqlite3 "$T/cut.db" "DELETE FROM journal WHERE case_id='Z4'; DELETE FROM timers WHERE case_id='Z4'; DELETE FROM cases WHERE id='Z4'"
  expect 0 "the truncated copy without a checkpoint" -- "$CASECTL" verify --store "$T/cut.db"
  expect 1 "the truncated copy against the later checkpoint" -- "$CASECTL" verify --store "$T/cut.db" --checkpoint "$T/cp2.json" --pubkey "$T/key.pub"
  contains "$T/err" "rows were removed" "verify says rows were removed"
  expect 4 "no checkpoint --since a checkpoint the store no longer extends" -- "$CASECTL" checkpoint --store "$T/cut.db" --key "$T/key.pem" --since "$T/cp2.json"
  # An edit names its case, seq, table and column.
  cp "$CASECTL_STORE" "$T/edit.db"
  sqlite3 "$T/edit.db" "UPDATE journal SET data='{\"x\":' WHERE case_id='Z2'; DELETE FROM timers WHERE case_id='Z3'"
  expect 1 "verify an edited copy" -- "$CASECTL" verify --store "$T/edit.db"
  contains "$T/err" "case Z2 seq 2 journal.data: corrupt: revision 0: data is not JSON" "the unparsable column is named"
  contains "$T/err" "case Z3 seq 3 timers: timers: timer" "the deleted timer is named"
  contains "$T/out" "problem(s)" "verify still reports the rest"
  # Issue 15 §9: a journal column that does not parse fails nothing else.
  expect 0 "list over a corrupt row" -- "$CASECTL" list --store "$T/edit.db"
  contains "$T/out" "Z3" "list shows the other cases"
  expect 0 "follow over a corrupt row" -- "$CASECTL" follow --store "$T/edit.db"
  if [[ $(wc -l <"$T/out") == 4 ]]; then ok "follow gives every row"; else bad "follow rows: $(wc -l <"$T/out")"; fi
  contains "$T/err" "seq 2" "follow names the corrupt row"
  expect 0 "report over a corrupt row" -- "$CASECTL" report --store "$T/edit.db" --at 2026-03-03 --format json
  contains "$T/out" "journal row seq 2 cannot be read: its data is not JSON" "the report names the damaged row"
  # Schema 10: a case's state is its latest journal row; damaged, that case is named
  # (corrupt data, exit 4) and the report and list go on with the others.
  sqlite3 "$T/edit.db" "UPDATE journal SET state='{\"timers\":' WHERE case_id='Z4' AND revision=(SELECT max(revision) FROM journal WHERE case_id='Z4')"
  expect 4 "show a case whose latest row is damaged" -- "$CASECTL" show --store "$T/edit.db" Z4
  contains "$T/err" "Z4: its latest journal row (revision" "show names the damaged state"
  expect 0 "report over a damaged latest row" -- "$CASECTL" report --store "$T/edit.db" --at 2026-03-03 --format json
  contains "$T/out" "its latest journal row (revision" "the report lists the case among its problems"
  contains "$T/out" "Z3" "the report goes on with the other cases"
  expect 0 "list over a damaged latest row" -- "$CASECTL" list --store "$T/edit.db"
  sqlite3 "$T/edit.db" "UPDATE journal SET event=CAST(X'74656CFF' AS TEXT) WHERE case_id='Z1'"
  expect 1 "verify a row that is not UTF-8" -- "$CASECTL" verify --store "$T/edit.db"
  contains "$T/err" "case Z1 seq 1 journal.event: corrupt: revision 0: event is not UTF-8" "the column that is not UTF-8 is named"
  # The whole file damaged: a page of the journal overwritten.
  cp "$CASECTL_STORE" "$T/page.db"
  dd if=/dev/urandom of="$T/page.db" bs=4096 seek=3 count=1 conv=notrunc status=none
  "$CASECTL" verify --store "$T/page.db" >"$T/out" 2>"$T/err"
  if [[ $? == 1 || $? == 4 ]]; then ok "an overwritten page is found"; else bad "an overwritten page: exit $?"; fi
  ;;
scenarios)
  expect 0 "every scenario file in one call" -- "$CASECTL" test --quiet --lua-root "$SRC" tests/scenarios/*.yaml
  # Both orders: s24 loads its own budel profile, s23 uses lua/locations/budel.lua.
  expect 0 "s24 before s23 in one call" -- "$CASECTL" test --quiet --lua-root "$SRC" \
    tests/scenarios/s24_budel_met_interventieteam.yaml tests/scenarios/s23_budel_zonder_interventieteam.yaml
  ;;
readonly)
  # The user may only read: as root, run the commands as nobody (root ignores file
  # permissions, so as root this would test nothing).
  if [[ $(id -u) == 0 ]]; then
    command -v runuser >/dev/null || { bad "runuser is missing (util-linux): cannot test as a user"; echo "$NAME: $fails failure(s)"; exit 1; }
    AS=(runuser -u nobody --)
  else
    AS=()
  fi
  chmod 0755 "$T"
  if ! "${AS[@]}" test -x "$CASECTL"; then bad "the test user cannot run $CASECTL (is the build directory readable by others?)"; echo "$NAME: $fails failure(s)"; exit 1; fi
  mkdir -p "$T/ro"
  S=$T/ro/s.db
  R=(env CASECTL_STORE="$S" CASECTL_NO_PROGRESS=1 "$CASECTL")
  "${R[@]}" init --quiet --profile ter_apel=lua/locations/ter_apel.lua &&
  "${R[@]}" load --quiet examples/quickstart/aanmelding.yaml &&
  "${R[@]}" new --quiet --workflow aanmelding_demo --location ter_apel --role IND --at 2026-03-02 Z1 &&
  "${R[@]}" fire --quiet --role AVIM --at 2026-03-03 Z1 geregistreerd || bad "making the store"
  [[ -e $S-wal || -e $S-shm ]] && bad "a closed store left -wal/-shm files"
  reads() { # $1: what; runs every reading command as the test user
    expect 0 "list ($1)" -- "${AS[@]}" "${R[@]}" list --json
    contains "$T/out" '"Z1"' "list shows Z1 ($1)"
    expect 0 "show ($1)" -- "${AS[@]}" "${R[@]}" show Z1
    contains "$T/out" "rust_en_voorbereiding" "show gives the state ($1)"
    expect 0 "events ($1)" -- "${AS[@]}" "${R[@]}" events --role COA --at 2026-03-04 Z1
    expect 0 "verify ($1)" -- "${AS[@]}" "${R[@]}" verify
    contains "$T/out" "1 case(s), 2 journal row(s), 0 problem(s)" "verify is clean ($1)"
    expect 0 "report ($1)" -- "${AS[@]}" "${R[@]}" report --at 2026-03-04 --format json
    contains "$T/out" '"total": 1' "the report counts the case ($1)"
    expect 0 "follow ($1)" -- "${AS[@]}" "${R[@]}" follow
    expect 0 "graph of the case ($1)" -- "${AS[@]}" "${R[@]}" graph --case Z1
    if [[ -e $S-wal || -e $S-shm ]]; then bad "reading left -wal/-shm files ($1)"; ls -l "$T/ro" | sed 's/^/     /'; else ok "no -wal/-shm left behind ($1)"; fi
  }
  # Read-only media, or a file and directory the user may only read.
  chmod 0444 "$S"; chmod 0555 "$T/ro"
  reads "file 0444, directory 0555"
  # A file the user may only read, in a directory it may write.
  chmod 0777 "$T/ro"
  reads "file 0444, directory 0777"
  chmod 0755 "$T/ro"; chmod 0644 "$S"
  # The Lua binding's readonly=true open, as the same user.
  LUA=${CASE_LUA:-$(command -v lua5.4 || true)}
  MOD=$(cd "$(dirname "$CASECTL")/../.." && pwd)/lua
  if [[ -n $LUA && -e $MOD/libcase.so ]]; then
    chmod 0444 "$S"; chmod 0555 "$T/ro"
    cat >"$T/ro.lua" <<EOF
local libcase = require 'libcase'
local s <close> = libcase.open_store('$S', { readonly = true })
local n = 0
for _ in pairs(s:cases()) do n = n + 1 end
assert(n == 1, 'cases: ' .. n)
assert(s:get('Z1').revision == 1, 'revision')
assert(s:verify(), 'verify')
print('lua read ok')
EOF
    chmod 0644 "$T/ro.lua"
    expect 0 "Lua open_store readonly=true" -- "${AS[@]}" env LUA_CPATH="$MOD/?.so" "$LUA" "$T/ro.lua"
    contains "$T/out" "lua read ok" "Lua reads the read-only store"
    chmod 0755 "$T/ro"; chmod 0644 "$S"
  else
    bad "no Lua interpreter (lua5.4) or module ($MOD/libcase.so) to test readonly=true with"
  fi
  ;;
pgfeed)
  # The store on PostgreSQL (issue 10 §3, §4), $CASE_TEST_STORE being the throwaway
  # cluster's URI (tests/cli/CMakeLists.txt): logins mapped with init --grant, and
  # follow --wait in one login's process seeing the other login's mutation at once.
  BASE=${CASE_TEST_STORE:-}
  if [[ $BASE != postgres* ]]; then bad "CASE_TEST_STORE is not a PostgreSQL URI: '$BASE'"; echo "$NAME: $fails failure(s)"; exit 1; fi
  SEP='?'; [[ $BASE == *\?* ]] && SEP='&'
  P="$BASE${SEP}schema=cli_feed_$$"
  Q=examples/quickstart/aanmelding.yaml
  LI=cli_ind_$$ LC=cli_coa_$$
  sql() { psql -X -q -v ON_ERROR_STOP=1 "$BASE" -c "SET client_min_messages TO warning; $1" >/dev/null; }
  cleanup() {
    sql "DROP SCHEMA IF EXISTS cli_feed_$$ CASCADE" 2>/dev/null
    for l in $LI $LC; do sql "DROP OWNED BY $l; DROP ROLE IF EXISTS $l" 2>/dev/null; done
  }
  trap 'cleanup; rm -rf "$T"' EXIT
  cleanup
  sql "CREATE ROLE $LI LOGIN; CREATE ROLE $LC LOGIN" || bad "cannot create the logins"
  # --grant on SQLite: a usage error that says why, and no file made.
  expect 2 "init --grant on an SQLite file" -- "$CASECTL" init --store "$T/g.db" --grant IND=$LI
  contains "$T/err" "PostgreSQL-only" "it says --grant is PostgreSQL-only"
  if [[ ! -e $T/g.db ]]; then ok "no SQLite file was made"; else bad "init --grant made $T/g.db"; fi
  expect 2 "--grant without a login" -- "$CASECTL" init --store "$P" --grant IND
  contains "$T/err" "is not ROLE=LOGIN" "it names the wrong mapping"
  # The owner creates the store, loads the workflow and maps the logins.
  expect 0 "init --grant on PostgreSQL" -- "$CASECTL" init --store "$P" --grant "IND=$LI,COA=$LC" --grant "AVIM=$LI"
  contains "$T/out" "login $LI may act as AVIM" "init says what it granted"
  expect 0 "load as the owner" -- "$CASECTL" load --store "$P" --quiet $Q
  expect 3 "init --grant to a login that does not exist" -- "$CASECTL" init --store "$P" --grant IND=nobody_$$
  contains "$T/err" "CREATE ROLE" "it says the login must be created first"
  AS_I=${P/postgres@/$LI@} AS_C=${P/postgres@/$LC@}
  # COA's tool follows; IND's tool creates a case: COA sees it within a second.
  "$CASECTL" follow --store "$AS_C" --wait >"$T/waited" 2>"$T/waited.err" &
  waiter=$!
  sleep 1
  expect 0 "new as IND's login" -- "$CASECTL" new --store "$AS_I" --quiet --workflow aanmelding_demo --role IND --at 2026-03-20 ZP
  t0=$(date +%s%N)
  for _ in $(seq 300); do grep -q '"case":"ZP"' "$T/waited" && break; sleep 0.01; done
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  kill "$waiter" 2>/dev/null; wait "$waiter" 2>/dev/null
  if grep -q '"case":"ZP"' "$T/waited"; then ok "follow --wait (COA's login) shows IND's new case"; else bad "follow --wait printed: $(cat "$T/waited" "$T/waited.err")"; fi
  if ((ms < 1000)); then ok "within a second of the commit (${ms} ms)"; else bad "follow --wait took ${ms} ms"; fi
  # A forged role: COA's login fires an event only AVIM may fire, as AVIM.  casectl
  # lets it through (the role is declared), the server refuses the row.
  expect 1 "a fire under a role not mapped to the login" -- "$CASECTL" fire --store "$AS_C" --role AVIM --at 2026-03-21 ZP geregistreerd
  contains "$T/err" "row-level security" "the server's refusal is shown"
  expect 0 "the same fire as IND's login, mapped to AVIM" -- "$CASECTL" fire --store "$AS_I" --role AVIM --at 2026-03-21 ZP geregistreerd
  expect 0 "verify as the owner" -- "$CASECTL" verify --store "$P"
  # follow --wait outlives a server restart (it used to exit 4 with a bare
  # "input/output error"): on a cluster of this test's own, which it stops.
  OWN=/tmp/libcase-feed-$$
  trap 'cleanup; scripts/pg-cluster stop "$OWN"; rm -rf "$T"' EXIT
  OU=$(scripts/pg-cluster start "$OWN") || bad "cannot start a cluster of its own"
  OP="$OU&schema=feed"
  expect 0 "init on the test's own cluster" -- "$CASECTL" init --store "$OP"
  expect 0 "load on it" -- "$CASECTL" load --store "$OP" --quiet $Q
  expect 0 "a first case" -- "$CASECTL" new --store "$OP" --quiet --workflow aanmelding_demo --role IND --at 2026-03-20 ZR1
  "$CASECTL" follow --store "$OP" --wait >"$T/r.out" 2>"$T/r.err" &
  fpid=$!
  sleep 1
  scripts/pg-cluster down "$OWN"
  sleep 2
  scripts/pg-cluster up "$OWN" || bad "the cluster did not start again"
  expect 0 "a case after the restart" -- "$CASECTL" new --store "$OP" --quiet --workflow aanmelding_demo --role IND --at 2026-03-20 ZR2
  for _ in $(seq 50); do grep -q '"case":"ZR2"' "$T/r.out" && break; sleep 0.1; done
  if kill -0 $fpid 2>/dev/null; then ok "follow --wait still runs after the restart"; else bad "follow --wait ended: $(cat "$T/r.err")"; fi
  kill $fpid 2>/dev/null; wait $fpid 2>/dev/null
  contains "$T/r.out" '"case":"ZR2"' "it shows the case made after the restart"
  if [[ $(grep -c '"case":"ZR1"' "$T/r.out") == 1 ]]; then ok "the row before the restart shown once"; else bad "ZR1 shown $(grep -c '"case":"ZR1"' "$T/r.out") times"; fi
  # (down: "no PostgreSQL server answers there"; caught while stopping: "is stopping or starting")
  contains "$T/r.err" "\(no PostgreSQL server answers there\|is stopping or starting\)" "it says why it waits"
  contains "$T/r.err" "the store answers again" "it says when the server is back"
  ;;
*) echo "unknown test $NAME"; exit 2 ;;
esac
echo "$NAME: $fails failure(s)"
((fails == 0))
