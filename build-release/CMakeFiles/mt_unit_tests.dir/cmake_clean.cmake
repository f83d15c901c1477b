file(REMOVE_RECURSE
  "CMakeFiles/mt_unit_tests.dir/tests/unit/runner.c.o"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/runner.c.o.d"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/test_embedded_pg.c.o"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/test_embedded_pg.c.o.d"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/test_json.c.o"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/test_json.c.o.d"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/test_service_pg.c.o"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/test_service_pg.c.o.d"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/test_tasks.c.o"
  "CMakeFiles/mt_unit_tests.dir/tests/unit/test_tasks.c.o.d"
  "mt_unit_tests"
  "mt_unit_tests.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/mt_unit_tests.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
