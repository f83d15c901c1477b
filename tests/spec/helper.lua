-- Support for the busted specs of the example tasks: a real PostgreSQL
-- database, the real CLI. Specs set rows up with SQL, schedule tasks through
-- `moontask schedule`, drain them with `moontask run --drain` and read the
-- outcome back from the database.
--
-- Environment:
--   DATABASE_URL   required; a database `moontask migrate` has been run on
--                  (e.g. the URL `moontask db start` prints)
--   MOONTASK_BIN   the CLI to test (default build/moontask)
--
-- Paths are relative: run busted from the repository root.
local dkjson = require("dkjson") -- ships with busted

local helper = {}

helper.bin = os.getenv("MOONTASK_BIN") or "build/moontask"
helper.database_url = os.getenv("DATABASE_URL")
if helper.database_url == nil or helper.database_url == "" then
  error("DATABASE_URL is not set: the specs need a migrated database, e.g.\n" ..
        "  (cd /tmp/spec-db && " .. helper.bin .. " db start)   # prints a URL\n" ..
        "  export DATABASE_URL=<that URL>\n" ..
        "  " .. helper.bin .. " --database-url \"$DATABASE_URL\" migrate", 0)
end

-- A drain that never ends would hang the whole run; past this many seconds
-- it is killed and the spec fails with exit code 124.
helper.drain_timeout = 60

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if f == nil then
    return ""
  end
  local text = f:read("a")
  f:close()
  return text
end

-- Runs a shell command; returns its exit code, stdout and stderr.
local function run(command)
  local errfile = os.tmpname()
  local p = assert(io.popen(command .. " 2>" .. quote(errfile), "r"))
  local out = p:read("a")
  local _, how, code = p:close()
  local err = read_file(errfile)
  os.remove(errfile)
  if how == "signal" then
    code = 128 + code
  end
  return code, out, err
end

local function lines(text)
  local result = {}
  for line in text:gmatch("([^\n]*)\n") do
    result[#result + 1] = line
  end
  return result
end

-- The specs pass their own configuration rather than the checkout's
-- config.lua, whose settings (a backend, a URL) belong to whoever edited it
-- last and are not what the specs assume.
local config_file = os.tmpname()
do
  local f = assert(io.open(config_file, "w"))
  f:write("return { backend = \"postgres\", tasks_dir = \"tasks\" }\n")
  f:close()
end
-- Removed when this module is collected; busted closes the Lua state on exit.
helper._config_guard = setmetatable({}, { __gc = function() os.remove(config_file) end })

--- Runs SQL through psql and returns its output lines (unaligned, tuples
--- only, fields separated by "|"). Raises with psql's message on failure.
function helper.sql(query)
  local code, out, err = run(string.format(
    "psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -d %s -c %s",
    quote(helper.database_url), quote(query)))
  if code ~= 0 then
    error(string.format("psql failed (exit %d): %s\nquery: %s", code, err, query), 2)
  end
  return lines(out)
end

--- The first column of the first row of a query, as text (nil: no row, or
--- NULL).
function helper.value(query)
  local v = helper.sql(query)[1]
  if v == "" then
    return nil
  end
  return v
end

--- One row of a query as a table (column -> value, JSON-typed), or nil.
function helper.row(query)
  local v = helper.value("SELECT row_to_json(r) FROM (" .. query .. ") r LIMIT 1")
  return v and dkjson.decode(v) or nil
end

--- All rows of a query as tables, in the query's order (jsonb_agg: one
--- line of output, where json_agg would break it between rows).
function helper.rows(query)
  local v = helper.value("SELECT coalesce(jsonb_agg(r), '[]') FROM (" .. query .. ") r")
  return dkjson.decode(v)
end

--- A task's row from moontask.tasks (id, name, state, attempts, last_error,
--- payload, ...), or nil if there is none.
function helper.task(id)
  return helper.row("SELECT * FROM moontask.tasks WHERE id = " .. math.tointeger(id))
end

--- Tasks of one name, oldest first.
function helper.tasks(name)
  return helper.rows(string.format(
    "SELECT * FROM moontask.tasks WHERE name = %s ORDER BY id",
    "'" .. name:gsub("'", "''") .. "'"))
end

--- Runs the CLI against the spec database and the repository's tasks.
--- Returns exit code, stdout, stderr.
function helper.moontask(...)
  local args = { quote(helper.bin), "--config", quote(config_file),
                 "--database-url", quote(helper.database_url),
                 "--tasks", "tasks" }
  for _, a in ipairs({ ... }) do
    args[#args + 1] = quote(a)
  end
  return run(table.concat(args, " "))
end

--- Schedules a task through the CLI and returns its id. payload is a table
--- (encoded as a JSON object) or JSON text; the other arguments go to
--- `moontask schedule` as they are (e.g. "--in", "2s").
function helper.schedule(name, payload, ...)
  if type(payload) == "table" then
    payload = dkjson.encode(payload)
  end
  local code, out, err = helper.moontask("schedule", name, payload, ...)
  if code ~= 0 then
    error(string.format("moontask schedule %s %s: exit %d: %s", name, payload,
                        code, err), 2)
  end
  return assert(math.tointeger(tonumber(out:match("^%s*(%d+)"))),
                "moontask schedule printed no task id: " .. out)
end

--- Runs every due task to the end and asserts the runtime exited 0.
--- Returns its stdout and stderr (handler logs are on stderr).
function helper.drain()
  local args = { "timeout", tostring(helper.drain_timeout), quote(helper.bin),
                 "--config", quote(config_file),
                 "--database-url", quote(helper.database_url),
                 "--tasks", "tasks", "run", "--drain", "--workers", "2" }
  local code, out, err = run(table.concat(args, " "))
  assert(code == 0, string.format("moontask run --drain: exit %d\n%s%s", code, out, err))
  return out, err
end

--- Applies the example application's schema and empties it and the task
--- table, so that each spec starts from nothing.
function helper.reset()
  local code, _, err = run(string.format(
    "psql -X -q -v ON_ERROR_STOP=1 -d %s -f scripts/example_app.sql",
    quote(helper.database_url)))
  if code ~= 0 then
    error("applying scripts/example_app.sql failed: " .. err, 2)
  end
  helper.sql("TRUNCATE app.outbox, app.payments, app.attendees, " ..
             "app.attendance_pools, app.events RESTART IDENTITY CASCADE")
  helper.sql("DELETE FROM moontask.tasks")
end

--- Inserts a row and returns its id; `values` is a table of column -> SQL
--- literal text (e.g. { starts_at = "now() + interval '1 day'" }).
function helper.insert(table_name, values)
  local columns, exprs = {}, {}
  for column, expr in pairs(values) do
    columns[#columns + 1] = column
    exprs[#exprs + 1] = expr
  end
  return math.tointeger(tonumber(helper.value(string.format(
    "INSERT INTO %s (%s) VALUES (%s) RETURNING id", table_name,
    table.concat(columns, ", "), table.concat(exprs, ", ")))))
end

--- Quotes text as an SQL literal.
function helper.literal(s)
  return "'" .. tostring(s):gsub("'", "''") .. "'"
end

helper.json = dkjson

return helper
