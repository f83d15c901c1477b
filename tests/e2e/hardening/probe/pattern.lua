-- Backtracking pattern matches that would take hours, in the library
-- function and as a string method.
return {
  timeout = 1, max_attempts = 1,
  handler = function(tx, payload, ctx)
    local s = string.rep("a", 200000)
    if payload.method then
      pcall(s.match, s, "(.-)(.-)(.-)(.-)b")
      return s:gsub(".-.-.-.-b", "")
    end
    pcall(string.find, s, ".-.-.-.-b")
    return string.find(s, ".-.-.-.-b")
  end,
}
