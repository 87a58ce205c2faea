-- Requests for ids 1..N with Zipf-like popularity: id k is requested with
-- a probability proportional to 1 / k^S. The seed is fixed, so every run
-- sends the same sequence of ids.
--
--   wrk ... -s zipf.lua URL -- TOKEN N S
local prefix
local cumulative = {}
local count

function init(args)
   local token = args[1]
   count = tonumber(args[2])
   local exponent = tonumber(args[3])
   prefix = wrk.path:gsub("/+$", "") .. "/"

   local total = 0
   for k = 1, count do
      total = total + 1 / k ^ exponent
      cumulative[k] = total
   end
   for k = 1, count do
      cumulative[k] = cumulative[k] / total
   end

   wrk.headers["Authorization"] = "Bearer " .. token
   math.randomseed(42)
end

-- The smallest rank whose cumulative probability reaches a uniform sample.
local function sample_rank()
   local u = math.random()
   local low, high = 1, count
   while low < high do
      local middle = math.floor((low + high) / 2)
      if cumulative[middle] < u then
         low = middle + 1
      else
         high = middle
      end
   end
   return low
end

function request()
   return wrk.format(nil, prefix .. sample_rank())
end
