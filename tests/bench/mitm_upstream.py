"""crmgate bench: mitmdump's addon. Every intercepted request goes to the bench's loopback
upstream over plain HTTP, as crmgate's --upstream does, so both proxies answer from the same
nginx. With connection_strategy=lazy and upstream_cert=false mitmdump opens no connection
before this hook has run: it never resolves or contacts the CRM host named in CONNECT."""
import os

PORT = int(os.environ["BENCH_UPSTREAM_PORT"])


class ToBenchUpstream:
    def request(self, flow):
        flow.request.scheme = "http"
        flow.request.host = "127.0.0.1"
        flow.request.port = PORT


addons = [ToBenchUpstream()]
