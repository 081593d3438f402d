#!/usr/bin/env python3
"""A TLS server for the TLS end-to-end tests: accepts COUNT connections on 127.0.0.1:PORT with
the test server certificate, completes (or refuses) each handshake, closes it, and writes to
OUT one line per connection: the SNI name asked for (None without one) and the TLS version
agreed (or the server's error). --max-tls12 refuses TLS 1.3. Bounded: 20 s per accept.

    tls_server.py PORT CERTDIR OUT COUNT [--max-tls12]
"""
import socket
import ssl
import sys

port, certs, out, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(certs + "/server.pem", certs + "/server.key")
if "--max-tls12" in sys.argv:
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
asked = []
ctx.sni_callback = lambda sock, name, c: asked.append(name)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(4)
srv.settimeout(20)
lines = []
for _ in range(count):
    conn, _ = srv.accept()
    before = len(asked)
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
        result = tls.version()
        tls.close()
    except (ssl.SSLError, OSError) as e:
        result = getattr(e, "reason", None) or str(e)
        conn.close()
    name = asked[before] if len(asked) > before else None
    lines.append(f"{name} {result}")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
