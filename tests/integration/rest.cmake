# REST integration test extras (tests/integration/test_rest.c). Include after
# the test targets exist:  include(${CMAKE_CURRENT_SOURCE_DIR}/rest.cmake)
# test_rest starts the real abidance-query binary: tell it where the binary is
# and build the binary first.
if(TARGET test_rest AND TARGET abidance-query)
    target_compile_definitions(test_rest PRIVATE AB_QUERY_BIN="$<TARGET_FILE:abidance-query>")
    add_dependencies(test_rest abidance-query)
endif()
