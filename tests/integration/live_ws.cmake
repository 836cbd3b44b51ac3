# Live state + fan-out WebSocket tests (services/query/live.c, ws.c).
#
# Include this file from tests/integration/CMakeLists.txt AFTER its
# test_*.c loop:   include(${CMAKE_CURRENT_SOURCE_DIR}/live_ws.cmake)
# The loop there already builds test_live and test_ws (they need no
# database); the guards below only define them when it did not.

foreach(name test_live test_ws)
    if(NOT TARGET ${name})
        add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
        target_link_libraries(${name} PRIVATE abidance_query_lib abidance_common abidance_flags
            PkgConfig::LWS PkgConfig::JANSSON PkgConfig::CRITERION)
        add_test(NAME integration.${name} COMMAND ${name} --jobs 2)
        set_tests_properties(integration.${name} PROPERTIES LABELS integration TIMEOUT 300)
    endif()
endforeach()

# A server publishing a scripted sequence, for clients in other languages.
add_executable(ws_harness ${CMAKE_CURRENT_LIST_DIR}/ws_harness.c)
target_link_libraries(ws_harness PRIVATE abidance_query_lib abidance_common abidance_flags
    PkgConfig::LWS)

# Debian's python3-websockets against the harness.
add_test(NAME integration.ws_python
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_ws_python.py
            $<TARGET_FILE:ws_harness>)
set_tests_properties(integration.ws_python PROPERTIES LABELS integration TIMEOUT 120)
