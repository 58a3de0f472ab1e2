-- wrk request mix for Benchmarks/http1.sh: rotate over a few GETs so the
-- capture holds different URIs, a query string and two body sizes.
local paths = {
  "/small.txt",
  "/2k.txt",
  "/small.txt?q=kube+shark&page=2",
  "/api/status",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
