-- Mixed polling load for the soak run: cache hits, revalidations (304),
-- cached 404s and invalid ids, in a fixed proportion, and a count of every
-- status that the mix does not expect.
--
--   wrk ... -s soak.lua URL -- TOKEN HOT_IDS ETAG_OF_ID_1
--
-- Out of every 10 requests: 5 hits on ids 1..HOT_IDS, 2 revalidations of
-- image 1 with its ETag, 2 requests for a missing id, 1 invalid id.
local prefix
local token
local hot_ids
local etag
local counter = 0
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   token = args[1]
   hot_ids = tonumber(args[2])
   etag = args[3]
   prefix = wrk.path:gsub("/+$", "") .. "/"
   unexpected = 0
   statuses = {}
   math.randomseed(7)
end

function request()
   counter = counter + 1
   local slot = counter % 10
   local headers = { ["Authorization"] = "Bearer " .. token }
   local path
   if slot < 5 then
      path = prefix .. math.random(1, hot_ids)
   elseif slot < 7 then
      path = prefix .. "1"
      headers["If-None-Match"] = etag
   elseif slot < 9 then
      path = prefix .. "999999999"
   else
      path = prefix .. "not-an-id"
   end
   return wrk.format("GET", path, headers)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status ~= 200 and status ~= 304 and status ~= 404 and status ~= 400 then
      unexpected = unexpected + 1
   end
end

function done(summary, latency, requests)
   local total_unexpected = 0
   local merged = {}
   for _, thread in ipairs(threads) do
      total_unexpected = total_unexpected + thread:get("unexpected")
      for status, count in pairs(thread:get("statuses")) do
         merged[status] = (merged[status] or 0) + count
      end
   end
   io.write(string.format("soak unexpected %d\n", total_unexpected))
   for status, count in pairs(merged) do
      io.write(string.format("soak status %d %d\n", status, count))
   end
end
