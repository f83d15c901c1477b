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
--- opts.env = { NAME = "value", ... } runs the handler with these
--- environment variables set, for what it reads with ctx.env. The kit's own
--- configuration allows exactly these names (its `env` list); with
--- MOONTASK_CONFIG, that file must allow them itself.
---
--- The result has:
---   valid      false when the task is unknown or the payload breaks its
---              schema (the handler did not run; error names each JSON
---              Pointer)
---   ok         true when the handler returned without error
---   error      nil, or the message (a handler's comes with its traceback)
---   snooze     nil, or the seconds of the ctx.snooze the handler returned
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
--- kit.fake_http() starts a local HTTP server that stands in for an API the
--- task calls with moontask.http (python3 runs it; it listens on 127.0.0.1):
---
---   local api = kit.fake_http()
---   api.url                  -- "http://127.0.0.1:<port>": hand it to the
---                            -- task, e.g. through opts.env
---   api:reply({ status = 202, json = { id = "msg_1" } })
---                            -- the answer to every request from now on;
---                            -- several replies answer in turn, the last
---                            -- repeating. A reply: status, headers, body
---                            -- (text) or json (a table, sent as JSON),
---                            -- delay (seconds before it answers).
---   api:requests()           -- what it was sent, oldest first: { method,
---                            -- path, headers (names lower-cased), body,
---                            -- json (the body decoded, when it is JSON) }
---   api:reset()              -- forgets the requests and the replies
---                            -- (then it answers 200 {})
---   api:stop()               -- also done when the spec's process exits
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
local own_config = config_file == nil
if own_config then
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

-- The words that run a command with the variables of env (name -> value)
-- set, and the configuration that allows them: the kit's own config with an
-- `env` list naming them (a file of its own, which cleanup removes), or
-- MOONTASK_CONFIG's as it is (it must allow them itself). Returns the
-- words, the config file, and a cleanup function.
local function with_env(env)
  local words, names = {}, {}
  for name, value in pairs(env or {}) do
    if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
      error("opts.env: " .. tostring(name) .. " is not a variable name", 3)
    end
    names[#names + 1] = name
    words[#words + 1] = quote(name .. "=" .. tostring(value))
  end
  if #names == 0 then
    return {}, config_file, function() end
  end
  table.sort(names)
  table.sort(words)
  table.insert(words, 1, "env")
  if not own_config then
    return words, config_file, function() end
  end
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  local listed = {}
  for i, name in ipairs(names) do
    listed[i] = string.format("%q", name)
  end
  f:write("return { backend = \"postgres\", env = { ",
          table.concat(listed, ", "), " } }\n")
  f:close()
  return words, file, function() os.remove(file) end
end

-- Runs the CLI with the kit's global options, and env's variables (see
-- with_env); returns exit code, stdout, stderr.
local function moontask(args, env)
  local words, config, cleanup = with_env(env)
  words[#words + 1] = quote(kit.bin)
  for _, w in ipairs({ "--config", quote(config),
                  "--tasks", quote(kit.tasks_dir),
                  "--schemas", quote(kit.schemas_dir) }) do
    words[#words + 1] = w
  end
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
  cleanup()
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
  local code, out, err = moontask(args, opts.env)
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

-- The kit's own folder, where fake_http.py lives.
local kit_dir = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."

local Fake = {}
Fake.__index = Fake

local function write_json(path, value)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "w"))
  f:write(json.encode(value))
  f:close()
  assert(os.rename(tmp, path))
end

--- Sets the replies, answered in turn (the last one repeats).
function Fake:reply(...)
  local replies = {}
  for i, r in ipairs({ ... }) do
    local headers = {}
    for k, v in pairs(r.headers or {}) do
      headers[k] = v
    end
    local body = r.body or ""
    if r.json ~= nil then
      body = json.encode(r.json)
      headers["Content-Type"] = headers["Content-Type"] or "application/json"
    end
    replies[i] = { status = r.status or 200, headers = headers, body = body,
                   delay = r.delay or 0 }
  end
  write_json(self.dir .. "/replies.json", replies)
  return self
end

--- The requests received so far, oldest first.
function Fake:requests()
  local list = {}
  local f = io.open(self.dir .. "/requests.jsonl", "r")
  if f == nil then
    return list
  end
  for line in f:lines() do
    local r = json.decode(line)
    local ctype = r.headers["content-type"] or ""
    if ctype:find("json", 1, true) and r.body ~= "" then
      r.json = json.decode(r.body)
    end
    list[#list + 1] = r
  end
  f:close()
  return list
end

--- Forgets the requests and the replies.
function Fake:reset()
  os.remove(self.dir .. "/requests.jsonl")
  os.remove(self.dir .. "/replies.json")
  return self
end

--- Stops the server (by its PID) and removes its files.
function Fake:stop()
  if self.pid ~= nil then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
  os.execute("rm -rf " .. quote(self.dir))
end

--- Starts a fake HTTP API; see the top of this file.
function kit.fake_http()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. quote(dir)))
  -- The busted process: the shell io.popen starts is its child, so its
  -- $PPID. The server exits once that process is gone.
  local p = assert(io.popen("echo $PPID", "r"))
  local owner = p:read("l")
  p:close()
  p = assert(io.popen(string.format(
    "python3 %s --dir %s --owner %s >%s 2>&1 </dev/null & echo $!",
    quote(kit_dir .. "/fake_http.py"), quote(dir), quote(owner),
    quote(dir .. "/log")), "r"))
  local pid = p:read("l")
  p:close()
  local fake = setmetatable({ dir = dir, pid = pid }, Fake)
  -- It writes its port once it accepts connections (python takes a moment
  -- to start).
  for _ = 1, 200 do
    local f = io.open(dir .. "/port", "r")
    if f ~= nil then
      fake.port = math.tointeger(tonumber(f:read("l")))
      f:close()
      break
    end
    os.execute("sleep 0.05")
  end
  if fake.port == nil then
    local log = read_file(dir .. "/log")
    fake:stop()
    error("kit.fake_http: the server did not start within 10 s: " .. log, 2)
  end
  fake.url = "http://127.0.0.1:" .. fake.port
  return fake
end

kit.json = json

return kit
