-- bench/web.py's load generator, for wrk (Debian's `wrk`, LuaJIT): one thread per reviewer,
-- each with one keep-alive connection, its own session cookie and its own paths, requesting
-- them one after another as fast as the server answers (closed loop). Every response is
-- checked (status 200 and what the page must show); done() prints one RESULT line.
--
--   wrk -t N -c N -d 10s -s bench/web.lua http://127.0.0.1:PORT -- CLIENTS_FILE PAGE
--
-- CLIENTS_FILE: a line per client, "<Cookie header>\t<path> <path> ...". PAGE: static, login,
-- queue or item (which checks apply).

local threads = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("client", count)
  table.insert(threads, thread)
end

local paths, cookie, page
local n = 0
current = ""
failures = 0
problem = ""

function init(args)
  local line_number = 0
  for line in io.lines(args[1]) do
    line_number = line_number + 1
    if line_number == client then
      local tab = string.find(line, "\t", 1, true)
      cookie = string.sub(line, 1, tab - 1)
      paths = {}
      for p in string.gmatch(string.sub(line, tab + 1), "%S+") do
        table.insert(paths, p)
      end
    end
  end
  page = args[2]
end

function request()
  n = n + 1
  current = paths[(n - 1) % #paths + 1] -- one connection per thread: the response is to this
  return wrk.format("GET", current, { ["Cookie"] = cookie })
end

local function occurrences(body, needle)
  local found, from = 0, 1
  while true do
    local at = string.find(body, needle, from, true)
    if not at then
      return found
    end
    found, from = found + 1, at + #needle
  end
end

local function has(body, needle)
  return string.find(body, needle, 1, true) ~= nil
end

-- What is wrong with the response, or nil.
local function check(status, body)
  if status ~= 200 then
    return "status " .. status
  end
  if page == "static" then
    if not has(body, "{") then
      return "not the stylesheet"
    end
  elseif page == "login" then
    if not (has(body, 'name="csrfmiddlewaretoken"') and has(body, 'name="password"')) then
      return "no login form"
    end
  elseif page == "queue" then
    local rows = occurrences(body, "data-href=")
    if rows ~= 50 then
      return rows .. " queue rows, expected a full page of 50"
    end
    if not (has(body, "Low confidence") and has(body, 'rel="next"')) then
      return "no reason counts or no next page"
    end
  elseif page == "item" then
    if not has(body, '<mark class="evidence">') then
      return "no highlighted evidence"
    end
    local messages = occurrences(body, '<article class="message')
    if messages ~= 5 then
      return messages .. " messages, not the thread's 5"
    end
    if not has(body, "Approve <kbd>a</kbd>") then
      return "no Approve button (held by someone else?)"
    end
  else
    return "unknown page " .. tostring(page)
  end
  return nil
end

function response(status, headers, body)
  local why = check(status, body)
  if why then
    failures = failures + 1
    if problem == "" then
      problem = "GET " .. tostring(current) .. ": " .. why
    end
  end
end

function done(summary, latency, requests)
  local failed, first = 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("failures") or 0)
    local p = thread:get("problem") or ""
    if first == "" and p ~= "" then
      first = p
    end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p95_us=%d errors=%d failures=%d problem=%s\n",
    summary.requests, summary.duration, latency:percentile(50.0), latency:percentile(95.0),
    e.connect + e.read + e.write + e.timeout, failed, first
  ))
end
