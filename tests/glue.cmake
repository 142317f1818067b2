# Tests on the real GLUE data and pretrained models in the shared directory (ATTUNE_SHARED_DIR,
# ../shared by default; CI has it), never copied into the repository.
add_executable(glue_defaults_test glue_defaults_test.cc)
target_link_libraries(glue_defaults_test PRIVATE attuned_process attune_job_waits attune_client_lib
                      GTest::gtest_main)
set_target_properties(glue_defaults_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME glue_defaults_test COMMAND glue_defaults_test)
# One epoch over 2,000 SST-2 examples and the 872 dev ones: 42 s on 2 lightly shared cores, 102 s
# with the cores shared by several builds.
set_tests_properties(glue_defaults_test PROPERTIES TIMEOUT 240
                     ENVIRONMENT "ATTUNE_SHARED_DIR=${ATTUNE_SHARED_DIR}")
