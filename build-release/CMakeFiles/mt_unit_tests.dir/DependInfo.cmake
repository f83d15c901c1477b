
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/tests/unit/runner.c" "CMakeFiles/mt_unit_tests.dir/tests/unit/runner.c.o" "gcc" "CMakeFiles/mt_unit_tests.dir/tests/unit/runner.c.o.d"
  "/work/main/tests/unit/test_embedded_pg.c" "CMakeFiles/mt_unit_tests.dir/tests/unit/test_embedded_pg.c.o" "gcc" "CMakeFiles/mt_unit_tests.dir/tests/unit/test_embedded_pg.c.o.d"
  "/work/main/tests/unit/test_json.c" "CMakeFiles/mt_unit_tests.dir/tests/unit/test_json.c.o" "gcc" "CMakeFiles/mt_unit_tests.dir/tests/unit/test_json.c.o.d"
  "/work/main/tests/unit/test_service_pg.c" "CMakeFiles/mt_unit_tests.dir/tests/unit/test_service_pg.c.o" "gcc" "CMakeFiles/mt_unit_tests.dir/tests/unit/test_service_pg.c.o.d"
  "/work/main/tests/unit/test_tasks.c" "CMakeFiles/mt_unit_tests.dir/tests/unit/test_tasks.c.o" "gcc" "CMakeFiles/mt_unit_tests.dir/tests/unit/test_tasks.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/main/build-release/CMakeFiles/moontask_core.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
