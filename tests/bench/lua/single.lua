-- One fixed request, the URL given to wrk, with a bearer token and an
-- optional If-None-Match header. The request is built once, so wrk sends
-- it without running Lua per request.
--
--   wrk ... -s single.lua URL -- TOKEN [ETAG]
function init(args)
   if args[1] and args[1] ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. args[1]
   end
   if args[2] and args[2] ~= "" then
      wrk.headers["If-None-Match"] = args[2]
   end
end
