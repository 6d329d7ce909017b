# The throwaway PostgreSQL cluster the tests run the store on (issue 10):
# scripts/pg-cluster starts it in a folder of its own under /tmp (a Unix socket
# there, no TCP port; as the `postgres` user when the tests run as root) before
# the first test that needs it, and stops and removes it after the last one
# (CTest fixture `pg`).  Without PostgreSQL installed, pg.start fails and so do
# the tests that need it: they never skip.
#
#   case_pg_test(TEST)  makes TEST require the cluster and sets
#                       CASE_TEST_STORE to its URI (tests/unit/store_uri.h).
#
# The folder is named after the build folder, so builds side by side (default,
# asan) have clusters of their own.
string(MD5 _case_pg_hash "${CMAKE_BINARY_DIR}")
string(SUBSTRING "${_case_pg_hash}" 0 12 _case_pg_hash)
set(CASE_PG_DIR "/tmp/libcase-pg-${_case_pg_hash}")
set(CASE_PG_URI "postgresql://postgres@/postgres?host=${CASE_PG_DIR}&port=5432")

add_test(NAME pg.start COMMAND ${PROJECT_SOURCE_DIR}/scripts/pg-cluster start ${CASE_PG_DIR})
add_test(NAME pg.stop COMMAND ${PROJECT_SOURCE_DIR}/scripts/pg-cluster stop ${CASE_PG_DIR})
set_tests_properties(pg.start PROPERTIES FIXTURES_SETUP pg TIMEOUT 120)
set_tests_properties(pg.stop PROPERTIES FIXTURES_CLEANUP pg TIMEOUT 120)

function(case_pg_test name)
  set_property(TEST ${name} APPEND PROPERTY FIXTURES_REQUIRED pg)
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "CASE_TEST_STORE=${CASE_PG_URI}")
  set_property(TEST ${name} APPEND PROPERTY LABELS postgresql)
endfunction()
