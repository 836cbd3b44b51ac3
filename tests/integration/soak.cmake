# Soak test (issue 8): one simulator injecting every fault at random rates
# for the whole run, the query and the ingest killed (-9) and restarted 2-3
# times each, PostgreSQL stopped and started once, hostile WebSocket and
# REST clients beside well-behaved ones; at the end every book and closed
# candle must equal the simulator's, the well-behaved clients saw no gap,
# and the RSS of both services is flat after warm-up
# (tests/integration/test_soak.py, helpers in e2e_lib.py and test_e2e.py).
#
# Include from tests/integration/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/soak.cmake)
#
# CI runs 180 s of market (about 3.5 minutes in all); it starts its own
# PostgreSQL cluster (port 54332 names its socket) and runs alone
# (RUN_SERIAL). The long run, by hand (seed printed; --seed N repeats one):
#   /usr/bin/python3 tests/integration/test_soak.py --sim BIN --ingest BIN \
#       --query BIN --duration 3600 [--seed N] [--keep]
#   or: ctest -L soak with ABIDANCE_SOAK_DURATION=3600 set at configure time.

set(ABIDANCE_SOAK_DURATION 180 CACHE STRING "seconds of market in integration.soak")

if(TARGET abidance-sim AND TARGET abidance-ingest AND TARGET abidance-query)
    math(EXPR ab_soak_timeout "${ABIDANCE_SOAK_DURATION} + 420")
    add_test(NAME integration.soak
        COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_soak.py
            --sim $<TARGET_FILE:abidance-sim>
            --ingest $<TARGET_FILE:abidance-ingest>
            --query $<TARGET_FILE:abidance-query>
            --duration ${ABIDANCE_SOAK_DURATION})
    set_tests_properties(integration.soak PROPERTIES
        LABELS "integration;soak" TIMEOUT ${ab_soak_timeout} RUN_SERIAL TRUE)
endif()
