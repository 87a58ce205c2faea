-- Requests for ids drawn uniformly from 1..N, with a fixed seed.
--
--   wrk ... -s uniform.lua URL -- TOKEN N
local prefix
local count

function init(args)
   count = tonumber(args[2])
   prefix = wrk.path:gsub("/+$", "") .. "/"
   wrk.headers["Authorization"] = "Bearer " .. args[1]
   math.randomseed(42)
end

function request()
   return wrk.format(nil, prefix .. math.random(count))
end
