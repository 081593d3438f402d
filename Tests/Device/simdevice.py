#!/usr/bin/env python3
"""A simulated RT-Thread device for mshmon's tests: an msh console (on stdio, a pty or a telnet
server) that prints RT-Thread's exact formats (free in the 4.x or 5.x form, list_memheap,
list_fd, lwIP's netstat, list_thread, memtrace), with the device's own log lines interleaved at
random points, and an MQTT client that really connects to the broker in cycles.

Leak modes: heap:N (+N bytes per cycle, tagged mqtt in memtrace), socket (a CLOSE_WAIT PCB per
cycle in netstat), fd (+1 row in list_fd per cycle), thread (+1 thread per cycle). Faults: a
reset after N cycles (boot banner, counters back to boot), a silent spell, missing commands, a
command that hangs the shell for good. --baud paces the console's output at that line rate.

    simdevice.py --serve stdio --broker 127.0.0.1:1883 [--client-id ID] [--leak heap:40] ...
    simdevice.py --serve pty:PATHFILE ...     (the pty's path is written to PATHFILE)
    simdevice.py --serve telnet:PORTFILE ...  (a telnet server on 127.0.0.1, its port written)
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import threading
import time
import tty

PROMPT = b"msh />"
BANNER = ["", " \\ | /", "- RT -     Thread Operating System", " / | \\     4.0.4 build Dec  1 2026",
          " 2006 - 2021 Copyright by rt-thread team", "lwIP-2.1.2 initialized!"]
LOG_LINES = ["[I/mqtt] heartbeat ok", "[D/sensor] temp 21.5C", "[W/wlan] rssi -71", "[I/app] tick", "\x1b[32m[I/sal.skt] Socket Abstraction Layer initialize success.\x1b[0m"]


class Device:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()       # one writer at a time on the console
        self.state = threading.Lock()      # the device's counters
        self.out = None                    # fn(bytes) writing to the console
        self.cycles = 0
        self.boot()
        self.silent_until = 0.0
        self.hung = False
        self.go = threading.Event()        # a cycle asked for by mqtt_cycle
        self.done = threading.Event()

    def boot(self):
        self.total = 4_194_304 if not self.a.memheap else 524_288
        self.base_used = 61_000
        self.connected = None              # (local port) while connected
        self.leaked_bytes = []             # sizes of leaked blocks
        self.close_wait = []               # local ports of leaked PCBs
        self.time_wait = []                # (local port, until)
        self.leaked_fds = 0
        self.leaked_threads = 0
        self.maximum = self.used()
        self.next_port = 49152

    def used(self):
        return self.base_used + sum(self.leaked_bytes) + (3_072 if self.connected else 0)

    # ---- console output ------------------------------------------------------------------
    def write(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with self.lock:
            self.out(data)

    def line(self, text):
        self.write(text + "\r\n")

    def log(self, text):
        if self.a.noise > 0:
            self.line(text)

    def reply(self, lines):
        """A command's output, line by line, another thread's line landing between them at random."""
        for text in lines:
            if self.a.noise > 0 and self.rng.random() < self.a.noise:
                self.line(self.rng.choice(LOG_LINES))
            self.line(text)

    # ---- commands --------------------------------------------------------------------------
    def run(self, cmd):
        name = cmd.split()[0]
        if name in self.a.missing:
            self.line("%s: command not found." % name)
            return
        if name == self.a.hang:
            self.line("Active PCB states:")   # prints, then the shell never comes back
            self.hung = True
            return
        if name == "mqtt_cycle":   # runs a cycle: not under the counters' lock, which the cycle takes
            self.go.set()
            self.done.wait(10)
            self.done.clear()
            self.reply(["mqtt cycle %d done" % self.cycles])
            return
        with self.state:
            out = self.command(name)
        if out is None:
            self.line("%s: command not found." % name)
        else:
            self.reply(out)

    def command(self, name):
        used = self.used()
        self.maximum = max(self.maximum, used)
        if name == "free":
            if self.a.memheap:
                return self.memheap(used)
            if self.a.version == 5:
                return ["total    : %d" % self.total, "used     : %d" % used, "maximum  : %d" % self.maximum,
                        "available: %d" % (self.total - used)]
            return ["total memory: %d" % self.total, "used memory : %d" % used, "maximum allocated memory: %d" % self.maximum]
        if name == "list_memheap":
            return self.memheap(used)
        if name == "list_fd":
            rows = ["fd type    ref magic  path", "-- ------  --- ----- ------", "%2d %-7.7s %3d %04x  %s" % (0, "device", 1, 0xfdfd, "/dev/uart0")]
            fd = 1
            if self.connected:
                rows.append("%2d %-7.7s %3d %04x  " % (fd, "socket", 1, 0xfdfd)); fd += 1
            for _ in self.close_wait:
                rows.append("%2d %-7.7s %3d %04x  " % (fd, "socket", 1, 0xfdfd)); fd += 1
            for i in range(self.leaked_fds):
                rows.append("%2d %-7.7s %3d %04x  %s" % (fd, "file", 1, 0xfdfd, "/log/mqtt%d.txt" % i)); fd += 1
            return rows
        if name == "netstat":
            now = time.monotonic()
            self.time_wait = [(p, t) for p, t in self.time_wait if t > now]
            active = []
            if self.connected:
                active.append((self.connected, "ESTABLISHED"))
            active += [(p, "CLOSE_WAIT") for p in self.close_wait]
            rows = ["Active PCB states:"]
            for i, (port, st) in enumerate(active):
                rows.append("#%d 192.168.0.101:%d <==> %s:%d snd_nxt 0x%08X rcv_nxt 0x%08X state: %s" % (i, port, self.a.broker_host, self.a.broker_port, 0xBE6EB + i, 0x3C8A3653, st))
            rows.append("Listen PCB states:")
            rows.append("#0 local port 23 state: LISTEN")
            rows.append("TIME-WAIT PCB states:")
            for i, (port, _) in enumerate(self.time_wait):
                rows.append("#%d 192.168.0.101:%d <==> %s:%d snd_nxt 0x%08X rcv_nxt 0x%08X state: TIME_WAIT" % (i, port, self.a.broker_host, self.a.broker_port, 0xBE6EB, 0x3C8A3653))
            rows.append("Active UDP PCB states:")
            rows.append("#0 0.0.0.0:68 <==> 0.0.0.0:67 ")
            return rows
        if name in ("list_thread", "ps"):
            threads = [("tshell", 20, "running"), ("tidle0", 31, "ready"), ("timer", 4, "suspend"), ("tcpip", 10, "suspend"),
                       ("etx", 12, "suspend"), ("erx", 12, "suspend"), ("mqtt_cyc\xff", 15, "suspend"), ("main", 10, "suspend")]
            threads += [("mqtt_rx%d" % i, 15, "suspend") for i in range(self.leaked_threads)]
            if self.a.smp:
                rows = ["thread   cpu pri  status      sp     stack size max used left tick  error",
                        "-------- --- ---  ------- ---------- ----------  ------  ---------- ---"]
                for n, p, st in threads:
                    rows.append("%-8.8s N/A  %3d  %-7s 0x%08x 0x%08x    %02d%%   0x%08x %03d" % (n, p, st, 0x100, 0x1000, 13, 10, 0))
            else:
                rows = ["thread   pri  status      sp     stack size max used left tick  error",
                        "-------- ---  ------- ---------- ----------  ------  ---------- ---"]
                for n, p, st in threads:
                    rows.append("%-8.8s %3d  %-7s 0x%08x 0x%08x    %02d%%   0x%08x %03d" % (n, p, st, 0x100, 0x1000, 13, 10, 0))
            return rows
        if name == "memtrace":
            rows = ["total memory: %d" % self.total, "used memory : %d" % used, "maximum allocated memory: %d" % self.maximum, "",
                    "memory heap address:", "heap_ptr: 0x20004818", "lfree   : 0x200052e4", "heap_end: 0x20408808", "",
                    "--memory item information --"]
            addr = 0x20004818
            blocks = [(128, "NONE"), (2048, "main"), (428, "tshe"), (self.base_used - 2604 - 4096, "init"), (4096, "tcpi")]
            if self.connected:
                blocks.append((3072, "mqtt"))
            blocks += [(n, "mqtt") for n in self.leaked_bytes]
            blocks.append((self.total - used, "    "))
            for size, tag in blocks:
                if size < 1024:
                    s = "%5d" % size
                elif size < 1024 * 1024:
                    s = "%4dK" % (size // 1024)
                else:
                    s = "%4dM" % (size // (1024 * 1024))
                rows.append("[0x%08x - %s] %s" % (addr, s, tag))
                addr += size + 12
            return rows
        if name == "help":
            return ["RT-Thread shell commands:"] + ["%-16s - %s" % (c, "sim") for c in ("free", "list_fd", "netstat", "list_thread", "memtrace", "mqtt_cycle")]
        if name == "version":
            return [" \\ | /", "- RT -     Thread Operating System", " / | \\     4.0.4 build Dec  1 2026"]
        return None

    def memheap(self, used):
        if self.a.memheap_empty:
            return ["memheap   pool size  max used size available size", "-------- ---------- ------------- --------------"]
        big = self.total
        return ["memheap   pool size  max used size available size", "-------- ---------- ------------- --------------",
                "%-8.8s %-010d %-013d %-05d" % ("heap", big, self.maximum, big - used),
                "%-8.8s %-010d %-013d %-05d" % ("sram", 32768, 48, 32720)]

    # ---- the shell -------------------------------------------------------------------------
    def shell(self, read):
        """Reads typed bytes through `read()` (b"" at EOF) and answers like msh."""
        line = b""
        self.write(PROMPT)
        while True:
            data = read()
            if not data:
                return
            for b in data:
                if self.hung:
                    continue
                while time.monotonic() < self.silent_until:
                    time.sleep(0.01)
                ch = bytes([b])
                if ch in (b"\r", b"\n"):
                    self.write(b"\r\n")
                    cmd = line.decode("utf-8", "replace").strip()
                    line = b""
                    if cmd:
                        self.run(cmd)
                    if not self.hung:
                        self.write(PROMPT)
                elif ch in (b"\x08", b"\x7f"):
                    line = line[:-1]
                else:
                    line += ch
                    self.write(ch)
                    if len(line) == 1 and self.a.noise > 0 and self.rng.random() < self.a.noise:
                        self.line(self.rng.choice(LOG_LINES))   # another thread's line inside the echo

    # ---- the MQTT client -------------------------------------------------------------------
    def mqtt(self):
        while True:
            if self.a.cycle_command:
                self.go.wait()
                self.go.clear()
            else:
                time.sleep(self.a.cycle_ms / 1000.0)
            try:
                self.cycle()
            except OSError as e:
                self.log("[E/mqtt] connect failed: %s" % e)
                time.sleep(0.2)
            self.done.set()

    def cycle(self):
        s = socket.create_connection((self.a.broker_host, self.a.broker_port), timeout=5)
        port = s.getsockname()[1]
        cid = self.a.client_id.encode()
        var = b"\x00\x04MQTT\x04\x02" + struct.pack(">H", 30)
        payload = struct.pack(">H", len(cid)) + cid
        s.sendall(bytes([0x10, len(var) + len(payload)]) + var + payload)
        ack = b""
        while len(ack) < 4:
            chunk = s.recv(4 - len(ack))
            if not chunk:
                raise OSError("closed before CONNACK")
            ack += chunk
        with self.state:
            self.connected = port
        self.log("[I/mqtt] connected, port %d" % port)
        topic = b"dev/up"
        body = b"hello"
        s.sendall(bytes([0x30, 2 + len(topic) + len(body)]) + struct.pack(">H", len(topic)) + topic + body)
        time.sleep(self.a.hold_ms / 1000.0)
        s.sendall(b"\xe0\x00")
        s.close()
        with self.state:
            self.connected = None
            self.cycles += 1
            leak = self.a.leak or ""
            if leak.startswith("heap:"):
                self.leaked_bytes.append(int(leak[5:]))
            elif leak == "socket":
                self.close_wait.append(port)
            elif leak == "fd":
                self.leaked_fds += 1
            elif leak == "thread":
                self.leaked_threads += 1
            if leak != "socket":
                self.time_wait.append((port, time.monotonic() + 1.0))
            n = self.cycles
        self.log("[I/mqtt] disconnected after cycle %d" % n)
        if self.a.reset_at and n == self.a.reset_at:
            with self.state:
                self.boot()
            self.a.leak = None
            for text in BANNER:
                self.line("\x1b[0m" + text)
        if self.a.silent_at and n == self.a.silent_at:
            self.silent_until = time.monotonic() + self.a.silent_for


def paced(write, baud):
    """`write` at `baud` (10 bits a byte on the wire), in small chunks."""
    if not baud:
        return write
    per_byte = 10.0 / baud
    def out(data):
        for i in range(0, len(data), 16):
            chunk = data[i:i + 16]
            write(chunk)
            time.sleep(len(chunk) * per_byte)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--serve", default="stdio")
    p.add_argument("--broker", required=True, help="host:port of the broker")
    p.add_argument("--client-id", default="rtt-dev-1")
    p.add_argument("--version", type=int, default=4, choices=[4, 5])
    p.add_argument("--memheap", action="store_true")
    p.add_argument("--memheap-empty", action="store_true")
    p.add_argument("--smp", action="store_true")
    p.add_argument("--leak")
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cycle-ms", type=float, default=40)
    p.add_argument("--hold-ms", type=float, default=5)
    p.add_argument("--cycle-command", action="store_true", help="cycle only when mqtt_cycle is typed")
    p.add_argument("--reset-at", type=int, default=0)
    p.add_argument("--silent-at", type=int, default=0)
    p.add_argument("--silent-for", type=float, default=3.0)
    p.add_argument("--missing", default="")
    p.add_argument("--hang", default="")
    p.add_argument("--baud", type=int, default=0)
    a = p.parse_args()
    a.missing = [m for m in a.missing.split(",") if m]
    host, _, port = a.broker.rpartition(":")
    a.broker_host, a.broker_port = host.strip("[]"), int(port)
    d = Device(a)

    threading.Thread(target=d.mqtt, daemon=True).start()
    if a.noise > 0:
        def chatter():
            while True:
                time.sleep(d.rng.uniform(0.05, 0.4))
                d.log(d.rng.choice(LOG_LINES))
        threading.Thread(target=chatter, daemon=True).start()

    if a.serve == "stdio":
        fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
        if os.isatty(fd_in):
            tty.setraw(fd_in)
        d.out = paced(lambda b: os.write(fd_out, b), a.baud)
        for text in BANNER:
            d.line(text)
        d.shell(lambda: os.read(fd_in, 256))
    elif a.serve.startswith("pty:"):
        master, slave = os.openpty()
        tty.setraw(slave)
        with open(a.serve[4:] + ".tmp", "w") as f:
            f.write(os.ttyname(slave))
        os.rename(a.serve[4:] + ".tmp", a.serve[4:])
        d.out = paced(lambda b: os.write(master, b), a.baud)
        for text in BANNER:
            d.line(text)
        d.shell(lambda: os.read(master, 256))   # the slave stays open here: no EOF while nobody has the line
    elif a.serve.startswith("telnet:"):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        with open(a.serve[7:] + ".tmp", "w") as f:
            f.write(str(srv.getsockname()[1]))
        os.rename(a.serve[7:] + ".tmp", a.serve[7:])
        while True:
            conn, _ = srv.accept()
            IAC, WILL, DO, ECHO, SGA, TTYPE = 255, 251, 253, 1, 3, 24
            conn.sendall(bytes([IAC, WILL, ECHO, IAC, WILL, SGA, IAC, DO, TTYPE]))
            d.out = paced(lambda b: conn.sendall(b.replace(b"\xff", b"\xff\xff")), a.baud)
            answers = []
            def read():
                while True:
                    data = conn.recv(256)
                    if not data:
                        return b""
                    out = strip(data)
                    if out:
                        return out
            def strip(data):
                out, i = b"", 0
                while i < len(data):
                    if data[i] == IAC and i + 1 < len(data):
                        if data[i + 1] in (251, 252, 253, 254):
                            answers.append(bytes(data[i:i + 3])); i += 3; continue
                        if data[i + 1] == IAC:
                            out += b"\xff"; i += 2; continue
                        i += 2; continue
                    out += data[i:i + 1]; i += 1
                return out
            d.shell(read)
            conn.close()
            with open(a.serve[7:] + ".answers", "w") as f:
                f.write(" ".join(x.hex() for x in answers))


if __name__ == "__main__":
    main()
