# Two `moontask migrate` at once on an empty database both succeed and leave
# one schema version; a third reports it is up to date.
source "$(dirname "$0")/lib.sh"
db=mt_migrate_$$
sql "CREATE DATABASE $db" >/dev/null
on_exit 'sql "DROP DATABASE IF EXISTS $db" >/dev/null'
url=$(sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\1$db#" <<<"$DATABASE_URL")
"$MOONTASK_BIN" --database-url "$url" migrate >/dev/null & p1=$!
"$MOONTASK_BIN" --database-url "$url" migrate >/dev/null & p2=$!
wait $p1 || fail "first migrate failed"
wait $p2 || fail "second migrate failed"
assert_eq "schema is up to date" "$("$MOONTASK_BIN" --database-url "$url" migrate)" "third migrate"
# Each version once, and every version up to the latest.
assert_eq t "$(psql -X -At -d "$url" -c "SELECT count(*) = count(DISTINCT version) AND count(*) = max(version) FROM moontask.migrations")" "versions recorded"
