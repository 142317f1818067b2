# Metrics, Prometheus, dashboard and deploy integration tests: the real attuned with --http, a
# running example job, and the real promtool, prometheus and chromium; the deploy files' argv
# started in a sandbox. Included from tests/CMakeLists.txt.
pkg_check_modules(HTTPLIB_TESTS REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(metrics_running_job STATIC ${CMAKE_CURRENT_LIST_DIR}/metrics_running_job.cc)
target_link_libraries(metrics_running_job PUBLIC attuned_process GTest::gtest absl::strings
                      PRIVATE PkgConfig::HTTPLIB_TESTS)

find_package(yaml-cpp REQUIRED)
add_library(deploy_argv STATIC ${CMAKE_CURRENT_LIST_DIR}/deploy_argv.cc)
target_link_libraries(deploy_argv PUBLIC absl::status absl::statusor absl::strings
                      PRIVATE nlohmann_json::nlohmann_json yaml-cpp)

foreach(name metrics_endpoint_test metrics_prometheus_test metrics_deploy_test
             dashboard_chromium_test)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.cc)
  target_link_libraries(${name} PRIVATE metrics_running_job deploy_argv GTest::gmock GTest::gtest_main
                        nlohmann_json::nlohmann_json absl::strings yaml-cpp)
  target_compile_definitions(${name} PRIVATE ATTUNE_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  # Each took 2 to 11 s with the whole suite on 2 shared cores.
  set_tests_properties(${name} PROPERTIES TIMEOUT 60 LABELS metrics)
endforeach()

# Its own main(): it enters the namespace sandbox before gtest or any thread starts.
add_executable(deploy_start_test ${CMAKE_CURRENT_LIST_DIR}/deploy_start_test.cc)
target_link_libraries(deploy_start_test PRIVATE metrics_running_job deploy_argv GTest::gtest
                      absl::strings)
target_compile_definitions(deploy_start_test PRIVATE ATTUNE_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
set_target_properties(deploy_start_test PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
add_test(NAME deploy_start_test COMMAND deploy_start_test)
set_tests_properties(deploy_start_test PROPERTIES TIMEOUT 60 LABELS deploy)  # 2-6 s
