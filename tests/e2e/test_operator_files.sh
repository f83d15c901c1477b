# Operator files (config.lua, task files, schema files) load under a time
# limit in every command, and their mistakes get an error that names the
# file, the field and the limit, with nothing written.
source "$(dirname "$0")/lib.sh"
reset_db
tmp=$E2E_TMP
mkdir -p "$tmp/tasks/t" "$tmp/schemas/s"
ok_task='return { handler = function() end }'
printf '%s\n' "$ok_task" > "$tmp/tasks/t/ok.lua"

# A loop in config.lua: every command stops loading it.
printf 'while true do end\n' > "$tmp/loop.lua"
for cmd in list "run --drain"; do
  expect_exit 2 "$MOONTASK_BIN" --config "$tmp/loop.lua" --database-url "$DATABASE_URL" $cmd
  assert_contains "$ERR" "loop.lua: did not finish loading within 5s" "config loop ($cmd)"
done

# A loop in a task file, and in a schema file.
printf 'while true do end\n' > "$tmp/tasks/t/loop.lua"
for cmd in check "run --drain"; do
  expect_exit 2 mt --tasks "$tmp/tasks" $cmd
  assert_contains "$ERR" "t/loop.lua: did not finish loading within 5s" "task file loop ($cmd)"
done
rm "$tmp/tasks/t/loop.lua"
printf 'return { handler = function() end, schema = "s.loop" }\n' > "$tmp/tasks/t/uses.lua"
printf '%s\n' 'local t = {} while true do t[#t % 10 + 1] = 1 end' > "$tmp/schemas/s/loop.lua"
expect_exit 2 mt --tasks "$tmp/tasks" --schemas "$tmp/schemas" check
assert_contains "$ERR" "s/loop.lua: did not finish loading within 5s" "schema file loop"
rm "$tmp/tasks/t/uses.lua"

# The returned table is read without running its code: an __index that
# loops or raises is not called.
printf 'return setmetatable({}, { __index = function() while true do end end })\n' > "$tmp/tasks/t/meta.lua"
expect_exit 2 mt --tasks "$tmp/tasks" check
assert_contains "$ERR" "t/meta.lua: handler must be a function(tx, payload, ctx), not nil" "definition with an __index"
rm "$tmp/tasks/t/meta.lua"
printf 'return setmetatable({}, { __index = function() error("boom") end })\n' > "$tmp/c.lua"
"$MOONTASK_BIN" --config "$tmp/c.lua" --database-url "$DATABASE_URL" list >/dev/null

# A task file that allocates without end is stopped by the memory limit.
printf 'local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(100) .. i end\n' > "$tmp/tasks/t/big.lua"
expect_exit 2 mt --tasks "$tmp/tasks" check
assert_contains "$ERR" "memory limit of 64 MiB exceeded while loading" "task file memory"
rm "$tmp/tasks/t/big.lua"

# Limits in task files.
for bad in "max_attempts = 1e12|max_attempts must be a whole number from 1 to 10000" \
           "max_attempts = 0|max_attempts must be a whole number from 1 to 10000, not 0" \
           "timeout = -1|timeout must be a number from 0.001 to 86400, not -1" \
           "memory_limit = 64|memory_limit must be a whole number from 1048576"; do
  printf 'return { handler = function() end, %s }\n' "${bad%%|*}" > "$tmp/tasks/t/bad.lua"
  expect_exit 2 mt --tasks "$tmp/tasks" check
  assert_contains "$ERR" "t/bad.lua: ${bad#*|}" "task file: ${bad%%|*}"
done
rm "$tmp/tasks/t/bad.lua"

# A symlink loop under tasks/ is refused, not followed 40 times.
ln -s .. "$tmp/tasks/t/again"
expect_exit 2 mt --tasks "$tmp/tasks" run --drain
assert_contains "$ERR" "t/again: a symlink loop" "symlink loop"
rm "$tmp/tasks/t/again"

# config.lua: whole numbers where they must be, unknown keys by name.
printf 'return { workers = 2.5 }\n' > "$tmp/c.lua"
expect_exit 2 "$MOONTASK_BIN" --config "$tmp/c.lua" --database-url "$DATABASE_URL" list
assert_contains "$ERR" "workers must be a whole number from 1 to 1024, not 2.5" "workers = 2.5"
printf 'return { task_timout = 5 }\n' > "$tmp/c.lua"
expect_exit 2 "$MOONTASK_BIN" --config "$tmp/c.lua" --database-url "$DATABASE_URL" list
assert_contains "$ERR" 'unknown setting "task_timout" (did you mean task_timeout?)' "typo in config"
printf 'return { memory_limit = 100 }\n' > "$tmp/c.lua"
expect_exit 2 "$MOONTASK_BIN" --config "$tmp/c.lua" --database-url "$DATABASE_URL" list
assert_contains "$ERR" "memory_limit must be a whole number from 1048576" "memory_limit in config"

# Passwords never appear in output, however the URL is broken.
for url in "postgresql://ada:s3cr%65t-pw@localhost:notaport/db" \
           "postgresql://ada:s3cret-pw@/db?host=/nonexistent&port=1" \
           "host=/nonexistent port=1 password=s3cret-pw user=ada" \
           "postgresql://ada@/db?password=s3cret-pw&host=/nonexistent&sslmode=bogus"; do
  expect_exit 1 "$MOONTASK_BIN" --config tests/e2e/config.lua --database-url "$url" list
  [[ "$ERR" != *s3cret* && "$ERR" != *s3cr%65t* ]] || fail "password printed: $ERR"
  assert_contains "$ERR" "cannot connect to the database" "bad URL ($url)"
done
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.tasks")" "tasks written"
