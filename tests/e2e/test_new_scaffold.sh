# `moontask new` scaffolds a task, its schema and a spec that loads, passes
# `check`, refuses to overwrite itself, and passes as generated under busted
# through the test kit.
source "$(dirname "$0")/lib.sh"
tmp=$E2E_TMP

new() {
  "$MOONTASK_BIN" --database-url "$DATABASE_URL" --tasks "$tmp/tasks" \
    --schemas "$tmp/schemas" new "$@"
}

out=$(new demo.hello --specs "$tmp/spec")
for f in "$tmp/tasks/demo/hello.lua" "$tmp/schemas/demo/hello.lua" \
         "$tmp/spec/demo_hello_spec.lua"; do
  [ -f "$f" ] || fail "new did not create $f"
  assert_contains "$out" "$f" "new names what it created"
done
assert_contains "$(cat "$tmp/tasks/demo/hello.lua")" 'schema = "demo.hello"' "task names its schema"

check=$("$MOONTASK_BIN" --tasks "$tmp/tasks" --schemas "$tmp/schemas" check)
assert_contains "$check" "demo.hello" "check loads the new task"

# Nothing is overwritten, and the refusal names the file.
before=$(cat "$tmp/tasks/demo/hello.lua")
echo "-- edited" >> "$tmp/tasks/demo/hello.lua"
expect_exit 2 new demo.hello --specs "$tmp/spec"
assert_contains "$ERR" "$tmp/tasks/demo/hello.lua" "refusal names the file"
assert_contains "$(tail -1 "$tmp/tasks/demo/hello.lua")" "-- edited" "file left alone"
new demo.hello --specs "$tmp/spec" --force >/dev/null
assert_eq "$before" "$(cat "$tmp/tasks/demo/hello.lua")" "--force rewrites"

# Bad names write nothing.
expect_exit 2 new demo --specs "$tmp/spec"
expect_exit 2 new 'demo.1x' --specs "$tmp/spec"
[ ! -e "$tmp/tasks/demo.lua" ] || fail "a refused name wrote a file"

# A scaffold that does not load (here: a broken neighbour) is taken back.
echo 'return {' > "$tmp/tasks/demo/broken.lua"
expect_exit 1 new demo.other --specs "$tmp/spec"
assert_contains "$ERR" "broken.lua" "names the file that does not load"
for f in "$tmp/tasks/demo/other.lua" "$tmp/schemas/demo/other.lua" \
         "$tmp/spec/demo_other_spec.lua"; do
  [ ! -e "$f" ] || fail "a scaffold that does not load left $f behind"
done
rm "$tmp/tasks/demo/broken.lua"

# The generated spec passes as it is.
(cd "$ROOT" && MOONTASK_BIN="$MOONTASK_BIN" MOONTASK_TASKS="$tmp/tasks" \
   MOONTASK_SCHEMAS="$tmp/schemas" \
   lua5.4 /usr/bin/busted --run=default "$tmp/spec/demo_hello_spec.lua") >"$tmp/busted.out" 2>&1 ||
  fail "generated spec failed: $(cat "$tmp/busted.out")"
assert_contains "$(cat "$tmp/busted.out")" "2 successes / 0 failures / 0 errors" "busted on the generated spec"
echo "ok test_new_scaffold"
