#!/usr/bin/env python3
"""A broker that breaks MQTT 3.1.1 after CONNACK, for the e2e tests of `mshmon cycle`'s exit
status. Usage: hostile_broker.py MODE  (prints `listening on 127.0.0.1:PORT`, serves until killed)
  suback-reserved   answers SUBSCRIBE with return code 0x03 for every filter [MQTT-3.9.3-2]
  garbage-after-connack
                    answers CONNECT with CONNACK, then a reserved packet type (0xF0)
Only loopback; each connection served on its own thread."""
import socket, sys, threading

def read_packet(conn):
    head = conn.recv(1)
    if not head:
        return None, None
    length, mult = 0, 1
    while True:
        b = conn.recv(1)[0]
        length += (b & 0x7F) * mult
        mult *= 128
        if b < 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None, None
        body += chunk
    return head[0], body

def serve(conn, mode):
    with conn:
        while True:
            kind, body = read_packet(conn)
            if kind is None:
                return
            t = kind >> 4
            if t == 1:  # CONNECT
                conn.sendall(bytes([0x20, 2, 0, 0]))
                if mode == "garbage-after-connack":
                    conn.sendall(bytes([0xF0, 0x00]))
            elif t == 8:  # SUBSCRIBE: packet id, then (filter, qos) pairs
                pid, i, n = body[:2], 2, 0
                while i < len(body):
                    i += 2 + int.from_bytes(body[i:i + 2], "big") + 1
                    n += 1
                code = 0x03 if mode == "suback-reserved" else 0x00
                conn.sendall(bytes([0x90, 2 + n]) + pid + bytes([code] * n))
            elif t == 3 and kind & 0x06 == 0x02:  # PUBLISH QoS 1: PUBACK
                tl = int.from_bytes(body[:2], "big")
                conn.sendall(bytes([0x40, 2]) + body[2 + tl:4 + tl])
            elif t == 14:  # DISCONNECT
                return

def main():
    mode = sys.argv[1]
    assert mode in ("suback-reserved", "garbage-after-connack"), mode
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print(f"listening on 127.0.0.1:{s.getsockname()[1]}", flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()

main()
