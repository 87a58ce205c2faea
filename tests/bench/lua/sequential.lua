-- Requests ids FIRST..LAST once each, in order, then FIRST again and again.
-- run.sh uses it to fill the cache. It watches the service's cache entry
-- gauge and interrupts wrk once every id is cached, so the repeated
-- requests for FIRST are cache hits.
--
--   wrk -t1 ... -s sequential.lua URL -- TOKEN FIRST LAST
local prefix
local first, last
local next_id

function init(args)
   first = tonumber(args[2])
   last = tonumber(args[3])
   next_id = first
   prefix = wrk.path:gsub("/+$", "") .. "/"
   wrk.headers["Authorization"] = "Bearer " .. args[1]
end

function request()
   local id = first
   if next_id <= last then
      id = next_id
      next_id = next_id + 1
   end
   return wrk.format(nil, prefix .. id)
end
