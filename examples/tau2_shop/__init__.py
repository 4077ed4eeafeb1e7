"""An example shop system in the shape of τ²-bench's retail domain, served as its own process.

`store` holds the data and the tool semantics; `mcp_server` and `rest_server` are the two faces
(MCP over stdio or Streamable HTTP, and a plain REST JSON API); `runtime` has what both share
(the test faults and the bearer-token gate). Run it with `python -m examples.tau2_shop`.
"""
