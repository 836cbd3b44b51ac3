# REST and bus integration test extras (tests/integration/test_rest.c,
# test_feed.c). Include after the test targets exist:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/rest.cmake)
# Both start the real abidance-query binary: tell them where the binary is
# and build the binary first.
foreach(name test_rest test_feed)
    if(TARGET ${name} AND TARGET abidance-query)
        target_compile_definitions(${name} PRIVATE AB_QUERY_BIN="$<TARGET_FILE:abidance-query>")
        add_dependencies(${name} abidance-query)
    endif()
endforeach()

# test_rest starts many servers, two at a time: each gets a free stream port
# and no bus socket, so they never collide (on 8081 or <data-dir>/bus.sock).
if(TARGET test_rest)
    set_property(TEST integration.test_rest APPEND PROPERTY ENVIRONMENT
        "ABIDANCE_WS_ADDR=127.0.0.1:0" "ABIDANCE_BUS=none")
endif()
