# Least privilege: application roles granted exactly what README.md's
# "Roles and grants" says reach tasks only through moontask's functions, see
# only their own tasks, and cannot change what those functions do by playing
# with their search_path. A runtime role that is not the owner runs tasks
# with the grants the README gives it.
source "$(dirname "$0")/lib.sh"
reset_db

APP1=mt_e2e_app1
APP2=mt_e2e_app2
RT=mt_e2e_runtime

# Roles are cluster-wide, and the suite may run again on the same cluster.
drop_roles() {
  for r in $APP1 $APP2 $RT; do
    sql "DO \$\$ BEGIN
           IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$r') THEN
             DROP OWNED BY $r CASCADE;
             DROP ROLE $r;
           END IF;
         END \$\$" >/dev/null
  done
}
drop_roles
on_exit drop_roles

# The GRANT statements of README.md's "Roles and grants" whose grantee is
# $1, granted to $2 instead.
readme_grants() {
  awk '/^### Roles and grants/ { on = 1; next } /^#/ { on = 0 } on && /^    / { print }' README.md |
    awk -v RS=';' -v who="$1" -v to="$2" '
      $0 ~ ("TO " who "[ \n]*$") { sub("TO " who "[ \n]*$", "TO " to); print $0 ";" }'
}

# psql as role $1: the URL from mt_private_db (or a conninfo string) with
# its user replaced; libpq keeps the last `user` it is given.
url_for() {
  case "$DATABASE_URL" in
    postgres://* | postgresql://*)
      [[ "$DATABASE_URL" == *\?* ]] && echo "$DATABASE_URL&user=$1" || echo "$DATABASE_URL?user=$1" ;;
    *) echo "$DATABASE_URL user=$1" ;;
  esac
}
as_role() { # role sql
  psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$(url_for "$1")" -c "$2"
}

# SQL that role $1 must be refused with SQLSTATE $3; the output is in $OUT.
refused() { # role sql sqlstate what
  local rc=0
  OUT=$(as_role "$1" "$2" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "$4: accepted (output: $OUT)"
  assert_contains "$OUT" "$3" "$4"
}

for spec in "$APP1:app" "$APP2:app" "$RT:moontask_runtime"; do
  role=${spec%%:*}
  grants=$(readme_grants "${spec#*:}" "$role")
  [ "$(grep -c '^ *GRANT' <<<"$grants")" -ge 2 ] || fail "README grants for ${spec#*:}: '$grants'"
  sql "CREATE ROLE $role LOGIN; $grants" >/dev/null
done
assert_eq "$APP1" "$(as_role $APP1 "SELECT session_user")" "connected as the application role"

# --- The schema as a whole -------------------------------------------------
assert_eq 0 "$(sql "SELECT count(*) FROM pg_proc WHERE pronamespace = 'moontask'::regnamespace
                     AND NOT (prosecdef AND proconfig = '{\"search_path=pg_catalog, pg_temp\"}')")" \
  "functions not SECURITY DEFINER with a fixed search_path"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_proc WHERE pronamespace = 'moontask'::regnamespace
                     AND (proacl IS NULL OR 0 IN (SELECT grantee FROM aclexplode(proacl)))")" \
  "functions PUBLIC may execute"
# A NULL ACL is the default one, which gives PUBLIC nothing on these.
assert_eq 0 "$(sql "SELECT count(*) FROM pg_class WHERE relnamespace = 'moontask'::regnamespace
                     AND 0 IN (SELECT grantee FROM aclexplode(relacl))")" \
  "tables and sequences with rights for PUBLIC"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname = 'moontask'
                     AND 0 IN (SELECT grantee FROM aclexplode(nspacl))")" \
  "rights on the schema for PUBLIC"

# --- Scheduling, running, get and cancel through the functions -------------
id1=$(as_role $APP1 "SELECT moontask.schedule('e2e.insert', '{\"n\": 1}')")
[[ "$id1" =~ ^[0-9]+$ ]] || fail "schedule returned '$id1'"
assert_eq "$APP1|scheduled" "$(sql "SELECT created_by, state FROM moontask.tasks WHERE id = $id1")" "scheduled task's row"
assert_eq "id,name,payload,state,run_at,attempts,max_attempts,last_error,key,created_at,started_at,finished_at,queue,priority" \
  "$(as_role $APP1 "SELECT string_agg(k, ',') FROM moontask.get($id1) g, json_object_keys(row_to_json(g)) k")" \
  "get's fields"
assert_eq "$id1|e2e.insert|1|scheduled" \
  "$(as_role $APP1 "SELECT id, name, payload->>'n', state FROM moontask.get($id1)")" "get before the run"

mt run --drain 2>>"$RUNTIME_LOG"
assert_eq "completed|1" "$(sql "SELECT state, attempts FROM moontask.tasks WHERE id = $id1")" "state after the run"
assert_eq "$id1|1" "$(sql "SELECT task_id, n FROM e2e_rows")" "the handler's row"
assert_eq "completed" "$(as_role $APP1 "SELECT state FROM moontask.get($id1)")" "get after the run"
assert_eq f "$(as_role $APP1 "SELECT moontask.cancel($id1)")" "cancel of a completed task"

id2=$(as_role $APP1 "SELECT moontask.schedule('e2e.insert', '{\"n\": 2}', now() + interval '1 hour')")
# The second application neither sees nor cancels the first one's task.
assert_eq "" "$(as_role $APP2 "SELECT id FROM moontask.get($id2)")" "another role's get"
assert_eq f "$(as_role $APP2 "SELECT moontask.cancel($id2)")" "another role's cancel"
assert_eq scheduled "$(sql "SELECT state FROM moontask.tasks WHERE id = $id2")" "state after another role's cancel"
# The owner sees every task.
assert_eq "$id2" "$(sql "SELECT id FROM moontask.get($id2)")" "the owner's get"
assert_eq t "$(as_role $APP1 "SELECT moontask.cancel($id2)")" "cancel of a scheduled task"
assert_eq "cancelled|t" "$(sql "SELECT state, finished_at IS NOT NULL FROM moontask.tasks WHERE id = $id2")" "cancelled row"
assert_eq f "$(as_role $APP1 "SELECT moontask.cancel($id2)")" "cancel again"
assert_eq "" "$(as_role $APP1 "SELECT id FROM moontask.get(-1)")" "get of no task"

# --- find, reschedule and cancel by key (issue 13) ----------------------------
idk=$(as_role $APP1 "SELECT moontask.schedule('e2e.insert', '{\"n\": 8}', now() + interval '1 hour', 'lp-key')")
assert_eq "$idk|scheduled|0|8" \
  "$(as_role $APP1 "SELECT id, state, attempts, payload->>'n' FROM moontask.find('lp-key')")" "find by key"
assert_eq "" "$(as_role $APP2 "SELECT id FROM moontask.find('lp-key')")" "another role's find"
assert_eq f "$(as_role $APP2 "SELECT moontask.reschedule($idk, now(), '{\"n\": 66}')")" "another role's reschedule"
assert_eq f "$(as_role $APP2 "SELECT moontask.cancel_key('lp-key')")" "another role's cancel_key"
refused $APP2 "SELECT moontask.schedule('e2e.insert', '{}', now(), 'lp-key', replace => true)" 42501 \
  "replacing another role's task"
assert_eq t "$(as_role $APP1 "SELECT moontask.reschedule($idk, now() + interval '2 hours', '{\"n\": 9}')")" "reschedule"
assert_eq "9|t" "$(sql "SELECT payload->>'n', run_at > now() + interval '90 minutes' FROM moontask.tasks WHERE id = $idk")" \
  "the rescheduled row"
refused $APP1 "SELECT moontask.reschedule($idk, now(), '[1]')" 22023 "reschedule with an array payload"
assert_eq t "$(as_role $APP1 "SELECT moontask.cancel_key('lp-key')")" "cancel_key"
assert_eq "cancelled" "$(as_role $APP1 "SELECT state FROM moontask.find('lp-key')")" "find of a cancelled task"
assert_eq f "$(as_role $APP1 "SELECT moontask.reschedule($idk, now(), NULL)")" "reschedule of a cancelled task"

# --- Everything else is refused ----------------------------------------------
before=$(sql "SELECT count(*), max(id), string_agg(state, ',' ORDER BY id) FROM moontask.tasks")
refused $APP1 "SELECT * FROM moontask.tasks" 42501 "SELECT on tasks"
refused $APP1 "SELECT payload FROM moontask.tasks WHERE id = $id1" 42501 "SELECT of a payload"
refused $APP1 "INSERT INTO moontask.tasks (name) VALUES ('e2e.insert')" 42501 "INSERT"
refused $APP1 "INSERT INTO moontask.tasks (id, name) OVERRIDING SYSTEM VALUE VALUES (999999, 'e2e.insert')" \
  42501 "INSERT OVERRIDING SYSTEM VALUE"
refused $APP1 "UPDATE moontask.tasks SET state = 'scheduled' WHERE id = $id2" 42501 "UPDATE"
refused $APP1 "DELETE FROM moontask.tasks" 42501 "DELETE"
refused $APP1 "TRUNCATE moontask.tasks" 42501 "TRUNCATE"
refused $APP1 "SELECT * FROM moontask.schedules" 42501 "SELECT on schedules"
refused $APP1 "SELECT * FROM moontask.migrations" 42501 "SELECT on migrations"
refused $APP1 "SELECT moontask.complete($id2, 'x')" 42501 "moontask.complete"
assert_contains "$OUT" "permission denied for function complete" "complete's refusal"
refused $APP1 "SELECT moontask.complete($id2, 'x', 'v')" 42501 "moontask.complete with a version"
refused $APP1 "SELECT moontask.snooze($id2, 'x', 1)" 42501 "moontask.snooze"
refused $APP1 "SELECT * FROM moontask.pick_queued(1, '{e2e.insert}')" 42501 "moontask.pick_queued"
refused $APP1 "SELECT * FROM moontask.queues" 42501 "SELECT on queues"
assert_eq "$before" "$(sql "SELECT count(*), max(id), string_agg(state, ',' ORDER BY id) FROM moontask.tasks")" \
  "tasks after the refused statements"

# --- Key length: one clear error, through SQL and the CLI --------------------
long=$(printf 'k%.0s' $(seq 10240))
refused $APP1 "SELECT moontask.schedule('e2e.insert', '{}', now(), '$long')" 22023 "10 KB key in SQL"
assert_contains "$OUT" "moontask.schedule: key is 10240 bytes, at most 512 are allowed" "10 KB key message"
refused $APP1 "SELECT moontask.schedule('e2e.insert', '{}', now(), repeat('é', 257))" 22023 "513-byte key"
as_role $APP1 "SELECT moontask.schedule('e2e.insert', '{}', now() + interval '1 hour', repeat('k', 512))" >/dev/null
expect_exit 2 mt schedule e2e.insert '{"n": 9}' --key "$long"
assert_contains "$ERR" "key is 10240 bytes, at most 512 are allowed" "10 KB key from the CLI"
assert_eq "0|1" "$(sql "SELECT count(*) FILTER (WHERE octet_length(key) > 512),
                           count(*) FILTER (WHERE octet_length(key) = 512) FROM moontask.tasks")" \
  "keys written"

# --- search_path games ---------------------------------------------------------
# The application's own schema, in front of pg_catalog, with look-alikes of
# what the functions call: any of them running as the owner would show in
# `pwned`, a wrong result, or a task that is not in moontask.tasks.
sql "CREATE SCHEMA $APP1 AUTHORIZATION $APP1" >/dev/null
as_role $APP1 "
  CREATE TABLE $APP1.pwned (who text, what text);
  CREATE TABLE $APP1.tasks (id bigint, name text, payload jsonb, state text,
    run_at timestamptz, key text, created_by text);
  CREATE FUNCTION $APP1.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql AS
    \$\$ INSERT INTO $APP1.pwned VALUES (current_user, 'jsonb_typeof') RETURNING 'object' \$\$;
  CREATE FUNCTION $APP1.octet_length(text) RETURNS integer LANGUAGE sql AS
    \$\$ INSERT INTO $APP1.pwned VALUES (current_user, 'octet_length') RETURNING 0 \$\$;
  CREATE FUNCTION $APP1.now() RETURNS timestamptz LANGUAGE sql AS
    \$\$ SELECT '2000-01-01 00:00+00'::timestamptz \$\$;
  CREATE FUNCTION $APP1.pg_has_role(name, name, text) RETURNS boolean LANGUAGE sql AS
    \$\$ INSERT INTO $APP1.pwned VALUES (current_user, 'pg_has_role') RETURNING true \$\$;
  CREATE FUNCTION $APP1.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS
    \$\$ INSERT INTO $APP1.pwned VALUES (current_user, 'pg_has_role') RETURNING true \$\$;
  CREATE FUNCTION $APP1.pg_notify(text, text) RETURNS void LANGUAGE sql AS
    \$\$ INSERT INTO $APP1.pwned VALUES (current_user, 'pg_notify') \$\$;" >/dev/null
id3=$(as_role $APP2 "SELECT moontask.schedule('e2e.insert', '{\"n\": 3}', now() + interval '1 hour')")
games() { PGOPTIONS="-c search_path=$APP1,pg_catalog" as_role $APP1 "$1"; }
# The look-alikes do win where the path is not fixed, so the checks below
# can fail.
assert_eq "object|0|2000" "$(games "SELECT jsonb_typeof('[1]'), octet_length('abc'), extract(year FROM now())")" \
  "the look-alikes in the application's own queries"
sql "DELETE FROM $APP1.pwned" >/dev/null

OUT=$(games "SELECT moontask.schedule('e2e.insert', '[1]')" 2>&1) && fail "an array payload was accepted"
assert_contains "$OUT" "22023: moontask.schedule: payload must be a JSON object, not array" "array payload with a game path"
OUT=$(games "SELECT moontask.schedule('e2e.insert', '{}', now(), '$long')" 2>&1) && fail "a 10 KB key was accepted"
assert_contains "$OUT" "22023: moontask.schedule: key is 10240 bytes" "10 KB key with a game path"
id4=$(games "SELECT moontask.schedule('e2e.insert', '{\"n\": 4}', NULL)")
assert_eq "$APP1|t" "$(sql "SELECT created_by, run_at > now() - interval '1 minute' FROM moontask.tasks WHERE id = $id4")" \
  "task scheduled with a game path"
assert_eq "" "$(games "SELECT id FROM moontask.get($id3)")" "another role's task with a game path"
assert_eq f "$(games "SELECT moontask.cancel($id3)")" "another role's cancel with a game path"
# pg_temp, which is searched first for tables unless named.
assert_eq "$id4|0" "$(as_role $APP1 "
  CREATE TEMP TABLE tasks (id bigint, name text, payload jsonb, key text, run_at timestamptz);
  SET search_path = pg_temp, $APP1, pg_catalog;
  SELECT count(*) FROM (SELECT moontask.cancel($id3)) c;
  SELECT id, (SELECT count(*) FROM pg_temp.tasks) FROM moontask.get($id4)" | tail -n 1)" \
  "get with a temporary table named tasks"
assert_eq "0|0|scheduled" "$(sql "SELECT (SELECT count(*) FROM $APP1.pwned), (SELECT count(*) FROM $APP1.tasks),
                                  (SELECT state FROM moontask.tasks WHERE id = $id3)")" \
  "look-alikes called, rows in the look-alike table, another role's task"

# --- Recurring schedules ---------------------------------------------------------
as_role $APP1 "SELECT moontask.schedule_recurring('lp.rec', 'e2e.insert', '{\"n\": 5}', '0 9 * * MON')" >/dev/null
assert_eq f "$(as_role $APP2 "SELECT moontask.unschedule_recurring('lp.rec')")" "another role's unschedule"
refused $APP2 "SELECT moontask.schedule_recurring('lp.rec', 'e2e.insert', '{\"n\": 6}', '* * * * *')" 42501 \
  "redefining another role's schedule"
assert_eq "$APP1|5|0 9 * * MON" "$(sql "SELECT created_by, payload->>'n', expression FROM moontask.schedules")" \
  "the schedule after the other role's attempts"
# A fire falls due now (as if the runtime had been down on Monday morning).
sql "UPDATE moontask.schedules SET next_fire_at = now() - interval '1 second'" >/dev/null
mt run --drain 2>>"$RUNTIME_LOG"
fire=$(sql "SELECT id FROM moontask.tasks WHERE schedule_name = 'lp.rec'")
[[ "$fire" =~ ^[0-9]+$ ]] || fail "fires of lp.rec: '$fire'"
assert_eq "$APP1|completed" "$(sql "SELECT created_by, state FROM moontask.tasks WHERE id = $fire")" "the fire's row"
assert_eq "5" "$(as_role $APP1 "SELECT payload->>'n' FROM moontask.get($fire)")" "get of its own fire"
assert_eq "" "$(as_role $APP2 "SELECT id FROM moontask.get($fire)")" "get of another role's fire"
assert_eq t "$(as_role $APP1 "SELECT moontask.unschedule_recurring('lp.rec')")" "unschedule its own"
assert_eq 0 "$(sql "SELECT count(*) FROM moontask.schedules")" "schedules after unschedule"

# --- A runtime role that is not the owner ------------------------------------------
cfg=$E2E_TMP/runtime-role.lua
cat >"$cfg" <<'EOF'
return {
  tasks_dir = "tests/e2e/tasks", schemas_dir = "tests/e2e/schemas",
  workers = 2, poll_interval = 0.2, lease_timeout = 3, task_timeout = 10,
  shutdown_grace = 5, migrate = false,
}
EOF
# What its handlers touch: e2e_rows, in whichever schema reset_db's
# search_path put it (for a login role named moontask, "$user" is moontask).
rows_schema=$(sql "SELECT relnamespace::regnamespace FROM pg_class WHERE oid = 'e2e_rows'::regclass")
sql "GRANT USAGE ON SCHEMA $rows_schema TO $RT; GRANT SELECT, INSERT ON e2e_rows TO $RT;
     ALTER ROLE $RT SET search_path = $rows_schema" >/dev/null
sql "DELETE FROM e2e_rows" >/dev/null
id5=$(as_role $APP1 "SELECT moontask.schedule('e2e.insert', '{\"n\": 7}')")
id6=$(as_role $APP1 "SELECT moontask.schedule('e2e.spawn', '{}')")
"$MOONTASK_BIN" --config "$cfg" --database-url "$(url_for $RT)" run --drain 2>>"$RUNTIME_LOG"
assert_eq "completed|1,completed|2" \
  "$(sql "SELECT string_agg(state || '|' || attempts, ',' ORDER BY id) FROM moontask.tasks WHERE id IN ($id5, $id6)")" \
  "tasks run by the runtime role"
assert_eq "$RT|completed" "$(sql "SELECT created_by, state FROM moontask.tasks WHERE id > $id6")" \
  "the follow-up its handler scheduled"
assert_eq "2,7" "$(sql "SELECT string_agg(n::text, ',' ORDER BY n) FROM e2e_rows")" "rows its handlers wrote"
