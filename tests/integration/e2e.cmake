# End-to-end test of the live path: abidance-sim -> abidance-ingest -> bus ->
# abidance-query -> PostgreSQL, REST and WebSocket clients
# (tests/integration/test_e2e.py, helpers in e2e_lib.py).
#
# Include from tests/integration/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/e2e.cmake)
#
# The test starts its own PostgreSQL cluster (pg-fixture.sh, in a temporary
# directory under /tmp, Unix socket only) because it stops and starts it in
# the middle of a scenario; it needs no CTest fixture. It runs alone
# (RUN_SERIAL): it keeps two cores busy and its scenarios are timed.
# Run by hand:
#   /usr/bin/python3 tests/integration/test_e2e.py --sim BIN --ingest BIN --query BIN [--only NAME] [--keep]

if(TARGET abidance-sim AND TARGET abidance-ingest AND TARGET abidance-query)
    add_test(NAME integration.e2e
        COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_e2e.py
            --sim $<TARGET_FILE:abidance-sim>
            --ingest $<TARGET_FILE:abidance-ingest>
            --query $<TARGET_FILE:abidance-query>)
    set_tests_properties(integration.e2e PROPERTIES
        LABELS integration TIMEOUT 600 RUN_SERIAL TRUE)
endif()
