# run_step(COMMAND...): runs a command for the consumer checks (run.cmake,
# package.cmake, shared.cmake); stops the check with the command line and
# everything it printed when it fails; leaves its output in `out`.
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "step '${command}' failed (${rc}):\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()
