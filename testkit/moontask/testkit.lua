--- moontask.testkit: run a task's handler from a busted spec against a real
--- PostgreSQL database, in one transaction that is always rolled back.
---
--- Usage, from a spec run at the repository root:
---
---   package.path = "./testkit/?.lua;" .. package.path   -- or, in .busted:
---                                   -- lpath = "./testkit/?.lua;..."
---   local kit = require("moontask.testkit")
---
---   describe("task: payments.verify", function()
---     it("expires a late payment", function()
---       local result = kit.run("payments.verify", { payment_id = 1 }, {
---         setup = { "INSERT INTO app.payments (...) VALUES (...)" },
---         check = { "SELECT status FROM app.payments WHERE id = 1" },
---       })
---       assert.is_true(result.ok, result.error)
---       assert.are.equal("expired", result.checks[1][1].status)
---       assert.are.equal(1, #result:scheduled_named("email.send_reminder"))
---     end)
---   end)
---
--- kit.run(name, payload, opts) runs `moontask try`: in one transaction it
--- runs opts.setup (SQL text, or a list of it; a text may hold several
--- statements), validates the payload exactly as the runtime does, runs the
--- handler with a real task id (ctx.id), runs the opts.check queries, lists
--- the tasks the handler scheduled, then rolls everything back. Specs need
--- no cleanup and do not see each other's rows. A handler that raises has
--- its writes undone before the checks run, as the runtime would; the setup
--- rows stay until the end.
---
--- The result has:
---   valid      false when the task is unknown or the payload breaks its
---              schema (the handler did not run; error names each JSON
---              Pointer)
---   ok         true when the handler returned without error
---   error      nil, or the message (a handler's comes with its traceback)
---   scheduled  follow-up tasks, in order: { name, payload, run_at, key }
---   checks     one list of rows per check query (rows are column -> value
---              tables decoded from JSON; SQL NULL is nil). When opts.check
---              is a table with string keys, checks has the same keys.
---   log        what the handler logged (ctx.log), as text
--- and the method result:scheduled_named(name) -> the follow-ups of that name.
---
--- kit.validate(name, payload) -> true, or false and the errors (text, one
--- violation a line) as `moontask validate` reports them.
---
--- Environment:
---   DATABASE_URL      a database `moontask migrate` has been run on
---   MOONTASK_BIN      the CLI (default build/moontask)
---   MOONTASK_TASKS    task scripts (default tasks)
---   MOONTASK_SCHEMAS  payload schemas (default schemas)
---   MOONTASK_CONFIG   a config file (default: none of the checkout's; the
---                     kit passes its own minimal one)
local json = require("dkjson") -- ships with busted

local kit = {}

kit.bin = os.getenv("MOONTASK_BIN") or "build/moontask"
kit.database_url = os.getenv("DATABASE_URL")
kit.tasks_dir = os.getenv("MOONTASK_TASKS") or "tasks"
kit.schemas_dir = os.getenv("MOONTASK_SCHEMAS") or "schemas"

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The checkout's config.lua belongs to whoever edited it last (a backend, a
-- URL); the kit's runs should depend only on the environment above.
local config_file = os.getenv("MOONTASK_CONFIG")
if config_file == nil then
  config_file = os.tmpname()
  local f = assert(io.open(config_file, "w"))
  f:write("return { backend = \"postgres\" }\n")
  f:close()
  -- Removed when the module is collected (busted closes the state on exit).
  kit._config_guard = setmetatable({}, {
    __gc = function() os.remove(config_file) end,
  })
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

-- Runs the CLI with the kit's global options; returns exit code, stdout,
-- stderr.
local function moontask(args)
  local words = { quote(kit.bin), "--config", quote(config_file),
                  "--tasks", quote(kit.tasks_dir),
                  "--schemas", quote(kit.schemas_dir) }
  if kit.database_url ~= nil and kit.database_url ~= "" then
    words[#words + 1] = "--database-url"
    words[#words + 1] = quote(kit.database_url)
  end
  for _, a in ipairs(args) do
    words[#words + 1] = quote(a)
  end
  local errfile = os.tmpname()
  local p = assert(io.popen(table.concat(words, " ") .. " 2>" .. quote(errfile), "r"))
  local out = p:read("a")
  local _, how, code = p:close()
  local err = read_file(errfile)
  os.remove(errfile)
  if how == "signal" then
    code = 128 + code
  end
  return code, out, err
end

local function encode_payload(payload)
  if type(payload) == "table" then
    -- An empty table is a payload with no fields, i.e. {} not [].
    return next(payload) == nil and "{}" or json.encode(payload)
  end
  return payload
end

local function as_list(v)
  if v == nil then
    return {}
  elseif type(v) == "string" then
    return { v }
  end
  return v
end

local Result = {}
Result.__index = Result

--- The follow-up tasks named `name`, in the order they were scheduled.
function Result:scheduled_named(name)
  local found = {}
  for _, t in ipairs(self.scheduled) do
    if t.name == name then
      found[#found + 1] = t
    end
  end
  return found
end

--- Runs task `name`'s handler on `payload` (a table, encoded as a JSON
--- object, or JSON text) and returns the result described at the top.
--- Raises when the run itself fails (no database, a setup or check query
--- with an error), never because of what the handler did.
function kit.run(name, payload, opts)
  opts = opts or {}
  if kit.database_url == nil or kit.database_url == "" then
    error("DATABASE_URL is not set: moontask.testkit needs a migrated database", 2)
  end
  local args = { "try", name, encode_payload(payload), "--json" }
  for _, sql in ipairs(as_list(opts.setup)) do
    args[#args + 1] = "--sql"
    args[#args + 1] = sql
  end
  -- Named checks run in key order, so that runs are reproducible.
  local checks, names = as_list(opts.check), nil
  if checks[1] == nil and next(checks) ~= nil then
    names = {}
    for k in pairs(checks) do
      names[#names + 1] = k
    end
    table.sort(names)
    local list = {}
    for i, k in ipairs(names) do
      list[i] = checks[k]
    end
    checks = list
  end
  for _, sql in ipairs(checks) do
    args[#args + 1] = "--check"
    args[#args + 1] = sql
  end
  local code, out, err = moontask(args)
  if code ~= 0 then
    error(string.format("moontask try %s: exit %d: %s", name, code, err), 2)
  end
  local result, _, msg = json.decode(out)
  if type(result) ~= "table" then
    error(string.format("moontask try %s printed no JSON (%s): %s", name,
                        tostring(msg), out), 2)
  end
  if names ~= nil then
    local keyed = {}
    for i, k in ipairs(names) do
      keyed[k] = result.checks[i]
    end
    result.checks = keyed
  end
  result.log = err
  return setmetatable(result, Result)
end

--- Validates a payload for task `name` as the TaskService does. Returns
--- true, or false and the errors. Raises when validation could not run.
function kit.validate(name, payload)
  local code, _, err = moontask({ "validate", name, encode_payload(payload) })
  if code == 0 then
    return true
  elseif code == 2 then
    return false, (err:gsub("^moontask: ", ""):gsub("\n$", ""))
  end
  error(string.format("moontask validate %s: exit %d: %s", name, code, err), 2)
end

kit.json = json

return kit
