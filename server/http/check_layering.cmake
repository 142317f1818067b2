# http_layering_test: the HTTP side and the client see neither the engine nor the scheduler.
#   server/http/: no include of server/engine/ or server/scheduler/, except in
#                 scheduler_jobs_source.{h,cc}, the one adapter between JobsSource and the
#                 Scheduler (its own library, attune_http_scheduler);
#   client/:      no include of anything under server/.
# Usage: cmake -DROOT=<source root> -P check_layering.cmake (fails listing every offending line).
if(NOT ROOT)
  message(FATAL_ERROR "pass -DROOT=<attune source root>")
endif()

set(violations "")
# Appends "file:line: text" for each line of the C++ files under `dir` that includes `pattern`,
# skipping files whose name matches `allowed` (a regex; "" = none).
function(check dir pattern allowed)
  file(GLOB_RECURSE files ${ROOT}/${dir}/*.h ${ROOT}/${dir}/*.cc ${ROOT}/${dir}/*.cpp)
  foreach(file ${files})
    get_filename_component(name ${file} NAME)
    if(allowed AND name MATCHES "${allowed}")
      continue()
    endif()
    file(STRINGS ${file} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]${pattern}")
    file(RELATIVE_PATH relative ${ROOT} ${file})
    foreach(line ${lines})
      list(APPEND violations "${relative}: ${line}")
    endforeach()
  endforeach()
  set(violations "${violations}" PARENT_SCOPE)
endfunction()

check(server/http "server/(engine|scheduler)/" "^scheduler_jobs_source\\.(h|cc)$")
check(client "server/" "")

if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "includes across layers (server/http reads jobs through JobsSource; the "
                      "client includes no server code):\n  ${text}")
endif()
message(STATUS "server/http and client/ include no engine, scheduler or server code")
