"""Test app for the export engine tests: answers GET on 127.0.0.1:$PORT with
what it received, one `KIND NAME HEX` line each (hex so that any byte
survives): `env KEY HEX(value)`, `arg - HEX(argv[i])`, `cwd - HEX(cwd)`."""
import http.server
import os
import signal
import sys


def hexed(text):
    return text.encode("utf-8", "surrogateescape").hex()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        lines = [f"env {k} {hexed(v)}" for k, v in sorted(os.environ.items())]
        lines += [f"arg - {hexed(a)}" for a in sys.argv[1:]]
        lines.append(f"cwd - {hexed(os.getcwd())}")
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print(f"listening on 127.0.0.1:{os.environ['PORT']} as {os.environ.get('PS')}", flush=True)
server.serve_forever()
