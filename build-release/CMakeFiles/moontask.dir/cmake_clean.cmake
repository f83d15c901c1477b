file(REMOVE_RECURSE
  "CMakeFiles/moontask.dir/runtime/main.c.o"
  "CMakeFiles/moontask.dir/runtime/main.c.o.d"
  "moontask"
  "moontask.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/moontask.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
