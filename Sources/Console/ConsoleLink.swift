// The byte stream to a device's msh console: a serial line (raw, 8N1, at a baud rate termios
// supports), RT-Thread's telnet server (its option negotiation answered, then plain text),
// or a program whose stdin and stdout are a pseudo-terminal (`exec:`, stopped by PID).

import ChildProcess
import Ledger
import Glibc

/// Where the console is, as given to `--console`.
public enum ConsoleAddress: Sendable, Equatable, CustomStringConvertible {
    case serial(path: String, baud: Int)
    case telnet(host: String, port: Int)
    case exec(command: String)

    /// `/dev/ttyUSB0`, `telnet://HOST[:PORT]` (port 23 by default), `exec:COMMAND`.
    public init(_ text: String, baud: Int = 115_200) throws(ConsoleError) {
        if text.hasPrefix("exec:") {
            let command = String(text.dropFirst(5))
            guard !command.allSatisfy(\.isWhitespace) else { throw .usage("--console exec: needs a command (exec:COMMAND)") }
            self = .exec(command: command)
        } else if text.hasPrefix("telnet://") {
            guard let (host, port) = Endpoint.parse(hostPort: text.dropFirst("telnet://".count), defaultPort: 23) else {
                throw .usage("--console \(text): expected telnet://HOST[:PORT] (port 1 to 65535, 23 by default)")
            }
            self = .telnet(host: host, port: port)
        } else if text.contains("://") {
            throw .usage("unknown console \(text): give a serial device path, telnet://HOST[:PORT] or exec:COMMAND")
        } else {
            guard ConsoleLink.speed(baud) != nil else {
                throw .usage("unsupported baud rate \(baud) (termios supports \(ConsoleLink.baudRates.map(String.init).joined(separator: ", ")))")
            }
            self = .serial(path: text, baud: baud)
        }
    }

    public var description: String {
        switch self {
        case .serial(let path, let baud): "\(path) at \(baud) baud"
        case .telnet(let host, let port): "telnet://" + Endpoint(address: host, port: UInt16(port)).description
        case .exec(let command): "exec:\(command)"
        }
    }
}

public enum ConsoleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Bad input on the command line (exit 2).
    case usage(String)
    /// The console could not be opened (exit 1).
    case cannotOpen(String)

    public var description: String {
        switch self {
        case .usage(let s), .cannotOpen(let s): s
        }
    }
}

/// An open console: bytes in and out, with a deadline on reads. One thread at a time.
public final class ConsoleLink: @unchecked Sendable {  // used under MshConsole's lock only
    public let address: ConsoleAddress
    private let fd: Int32
    private let child: ChildProcess?
    private var telnet: TelnetFilter?
    /// The far end hung up (EOF, a failed write): nothing more comes, but the fd is still ours.
    private var hungUp = false
    private var fdOpen = true
    private var closed: Bool { hungUp || !fdOpen }

    /// Opens the console. `substitute` fills `{host}` `{port}` `{url}` in an exec command.
    public init(_ address: ConsoleAddress, substitute: (String) -> String = { $0 }) throws(ConsoleError) {
        self.address = address
        switch address {
        case .serial(let path, let baud):
            fd = try Self.openSerial(path, baud: baud)
            child = nil
        case .telnet(let host, let port):
            fd = try Self.connect(host, port, name: address.description)
            child = nil
            telnet = TelnetFilter()
        case .exec(let command):
            do {
                let c = try ChildProcess(path: "/bin/sh", arguments: ["-c", substitute(command)], captureOutput: true,
                                         mergeStderr: true, onTerminal: true, terminalInput: true, removing: ["GLIBC_TUNABLES"])
                child = c
                fd = c.output!
            } catch {
                throw .cannotOpen("cannot start \(command): \(error)")
            }
        }
    }

    /// A console on an fd already open (a socketpair in tests), closed with the link.
    init(fd: Int32, address: ConsoleAddress, telnet: Bool = false) {
        self.address = address
        self.fd = fd
        child = nil
        self.telnet = telnet ? TelnetFilter() : nil
    }

    deinit { close() }

    /// Whether the console is still there: the exec'd program running, the line not hung up.
    public var isOpen: Bool {
        if closed { return false }
        if let child { return child.poll() == nil }
        return true
    }

    /// The exec'd program's pid.
    public var pid: Int32? { child?.pid }

    public func write(_ text: String) {
        var bytes = Array(text.utf8)
        if telnet != nil { bytes = TelnetFilter.escape(bytes) }
        send(bytes)
    }

    private func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count && !closed {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0); _ = poll(&p, 1, 100); continue }
                hungUp = true
                return
            }
            offset += n
        }
    }

    /// What arrives within `timeout` seconds (at least a byte, or empty on timeout); nil once
    /// the console has closed. Telnet negotiation is answered here and never returned.
    public func read(timeout: Double) -> [UInt8]? {
        guard !closed else { return nil }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let rc = poll(&p, 1, Int32(max(0, timeout * 1000).rounded(.up)))
        if rc == 0 { return [] }
        if rc < 0 { return errno == EINTR ? [] : nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = Glibc.read(fd, &buffer, buffer.count)
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return [] }
        if n <= 0 {
            hungUp = true
            return nil
        }
        let data = Array(buffer[..<n])
        guard var filter = telnet else { return data }
        let (text, answer) = filter.feed(data)
        telnet = filter
        if !answer.isEmpty { send(answer) }
        return text
    }

    /// Closes the console and stops an exec'd program (SIGTERM, then SIGKILL).
    public func close() {
        // An exec'd program's pty is its ChildProcess's, closed with it.
        if fdOpen && child == nil { Glibc.close(fd) }
        fdOpen = false
        child?.stop(grace: 1, group: true)
    }

    // MARK: opening

    /// The rates termios names (Bnnn).
    public static let baudRates = [50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600,
                                   115_200, 230_400, 460_800, 500_000, 576_000, 921_600, 1_000_000, 1_152_000, 1_500_000,
                                   2_000_000, 2_500_000, 3_000_000, 3_500_000, 4_000_000]

    static func speed(_ baud: Int) -> speed_t? {
        let codes: [speed_t] = [speed_t(B50), speed_t(B75), speed_t(B110), speed_t(B134), speed_t(B150), speed_t(B200), speed_t(B300),
                                speed_t(B600), speed_t(B1200), speed_t(B1800), speed_t(B2400), speed_t(B4800), speed_t(B9600),
                                speed_t(B19200), speed_t(B38400), speed_t(B57600), speed_t(B115200), speed_t(B230400),
                                speed_t(B460800), speed_t(B500000), speed_t(B576000), speed_t(B921600), speed_t(B1000000),
                                speed_t(B1152000), speed_t(B1500000), speed_t(B2000000), speed_t(B2500000), speed_t(B3000000),
                                speed_t(B3500000), speed_t(B4000000)]
        return baudRates.firstIndex(of: baud).map { codes[$0] }
    }

    private static func openSerial(_ path: String, baud: Int) throws(ConsoleError) -> Int32 {
        let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            switch e {
            case ENOENT: throw .cannotOpen("\(path): no such serial device")
            case EACCES: throw .cannotOpen("\(path): permission denied (is your user in the dialout group?)")
            case EBUSY: throw .cannotOpen("\(path): busy (another program has it open)")
            default: throw .cannotOpen("\(path): \(String(cString: strerror(e)))")
            }
        }
        var t = termios()
        guard tcgetattr(fd, &t) == 0 else {
            Glibc.close(fd)
            throw .cannotOpen("\(path): not a serial line (\(String(cString: strerror(errno))))")
        }
        cfmakeraw(&t)
        t.c_cflag &= ~(tcflag_t(PARENB) | tcflag_t(CSTOPB) | tcflag_t(CSIZE) | tcflag_t(CRTSCTS))
        t.c_cflag |= tcflag_t(CS8) | tcflag_t(CLOCAL) | tcflag_t(CREAD)
        let s = speed(baud)!
        cfsetispeed(&t, s)
        cfsetospeed(&t, s)
        guard tcsetattr(fd, TCSANOW, &t) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw .cannotOpen("\(path): cannot set \(baud) baud 8N1 (\(String(cString: strerror(e))))")
        }
        return fd
    }

    private static func connect(_ host: String, _ port: Int, name: String) throws(ConsoleError) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { throw .cannotOpen("\(name): cannot resolve \(host) (\(String(cString: gai_strerror(rc))))") }
        defer { freeaddrinfo(list) }
        var lastError = ECONNREFUSED
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let e = entry {
            let fd = socket(e.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd >= 0 {
                if Glibc.connect(fd, e.pointee.ai_addr, e.pointee.ai_addrlen) == 0 { return fd }
                lastError = errno
                Glibc.close(fd)
            }
            entry = e.pointee.ai_next
        }
        let why = lastError == ECONNREFUSED ? "connection refused (is the device's telnet server running?)" : String(cString: strerror(lastError))
        throw .cannotOpen("\(name): \(why)")
    }
}

/// Telnet's in-band commands (RFC 854): negotiation answered (we do let the server echo and
/// suppress go-ahead; we do nothing ourselves), sub-negotiations skipped, doubled 0xFF kept.
struct TelnetFilter {
    static let IAC: UInt8 = 255, DONT: UInt8 = 254, DO: UInt8 = 253, WONT: UInt8 = 252, WILL: UInt8 = 251
    static let SB: UInt8 = 250, SE: UInt8 = 240, ECHO: UInt8 = 1, SGA: UInt8 = 3

    private enum State { case data, command, option(UInt8), subnegotiation, subnegotiationIAC }
    private var state = State.data

    /// The text in `bytes` and what to answer.
    mutating func feed(_ bytes: [UInt8]) -> (text: [UInt8], answer: [UInt8]) {
        var text: [UInt8] = [], answer: [UInt8] = []
        for b in bytes {
            switch state {
            case .data:
                if b == Self.IAC { state = .command } else if b != 0 { text.append(b) }
            case .command:
                switch b {
                case Self.IAC: text.append(b); state = .data
                case Self.DO, Self.DONT, Self.WILL, Self.WONT: state = .option(b)
                case Self.SB: state = .subnegotiation
                default: state = .data
                }
            case .option(let verb):
                switch verb {
                case Self.WILL: answer += [Self.IAC, b == Self.ECHO || b == Self.SGA ? Self.DO : Self.DONT, b]
                case Self.DO: answer += [Self.IAC, Self.WONT, b]
                default: break  // WONT, DONT: nothing to agree to
                }
                state = .data
            case .subnegotiation:
                if b == Self.IAC { state = .subnegotiationIAC }
            case .subnegotiationIAC:
                state = b == Self.SE ? .data : .subnegotiation
            }
        }
        return (text, answer)
    }

    /// `bytes` with 0xFF doubled, as telnet sends it.
    static func escape(_ bytes: [UInt8]) -> [UInt8] {
        bytes.contains(IAC) ? bytes.flatMap { $0 == IAC ? [IAC, IAC] : [$0] } : bytes
    }
}
