
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/runtime/cli/cli.c" "CMakeFiles/moontask_core.dir/runtime/cli/cli.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/cli/cli.c.o.d"
  "/work/main/runtime/cli/cmd_admin.c" "CMakeFiles/moontask_core.dir/runtime/cli/cmd_admin.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/cli/cmd_admin.c.o.d"
  "/work/main/runtime/cli/cmd_run.c" "CMakeFiles/moontask_core.dir/runtime/cli/cmd_run.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/cli/cmd_run.c.o.d"
  "/work/main/runtime/cli/cmd_tasks.c" "CMakeFiles/moontask_core.dir/runtime/cli/cmd_tasks.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/cli/cmd_tasks.c.o.d"
  "/work/main/runtime/common/buf.c" "CMakeFiles/moontask_core.dir/runtime/common/buf.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/common/buf.c.o.d"
  "/work/main/runtime/common/error.c" "CMakeFiles/moontask_core.dir/runtime/common/error.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/common/error.c.o.d"
  "/work/main/runtime/config/config.c" "CMakeFiles/moontask_core.dir/runtime/config/config.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/config/config.c.o.d"
  "/work/main/runtime/discovery/discovery.c" "CMakeFiles/moontask_core.dir/runtime/discovery/discovery.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/discovery/discovery.c.o.d"
  "/work/main/runtime/executor/executor.c" "CMakeFiles/moontask_core.dir/runtime/executor/executor.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/executor/executor.c.o.d"
  "/work/main/runtime/executor/task.c" "CMakeFiles/moontask_core.dir/runtime/executor/task.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/executor/task.c.o.d"
  "/work/main/runtime/executor/task_tx.c" "CMakeFiles/moontask_core.dir/runtime/executor/task_tx.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/executor/task_tx.c.o.d"
  "/work/main/runtime/lua/env.c" "CMakeFiles/moontask_core.dir/runtime/lua/env.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/lua/env.c.o.d"
  "/work/main/runtime/lua/json.c" "CMakeFiles/moontask_core.dir/runtime/lua/json.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/lua/json.c.o.d"
  "/work/main/runtime/lua/tasks.c" "CMakeFiles/moontask_core.dir/runtime/lua/tasks.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/lua/tasks.c.o.d"
  "/work/main/runtime/lua/tx.c" "CMakeFiles/moontask_core.dir/runtime/lua/tx.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/lua/tx.c.o.d"
  "/work/main/runtime/lua/worker.c" "CMakeFiles/moontask_core.dir/runtime/lua/worker.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/lua/worker.c.o.d"
  "/work/main/runtime/postgres/embedded.c" "CMakeFiles/moontask_core.dir/runtime/postgres/embedded.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/postgres/embedded.c.o.d"
  "/work/main/runtime/postgres/migrate.c" "CMakeFiles/moontask_core.dir/runtime/postgres/migrate.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/postgres/migrate.c.o.d"
  "/work/main/runtime/postgres/pg.c" "CMakeFiles/moontask_core.dir/runtime/postgres/pg.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/postgres/pg.c.o.d"
  "/work/main/runtime/postgres/pg_backend.c" "CMakeFiles/moontask_core.dir/runtime/postgres/pg_backend.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/postgres/pg_backend.c.o.d"
  "/work/main/runtime/service/registry.c" "CMakeFiles/moontask_core.dir/runtime/service/registry.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/service/registry.c.o.d"
  "/work/main/runtime/service/service.c" "CMakeFiles/moontask_core.dir/runtime/service/service.c.o" "gcc" "CMakeFiles/moontask_core.dir/runtime/service/service.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
