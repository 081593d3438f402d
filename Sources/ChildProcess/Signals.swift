// Stop signals for the long-running commands (cycle, broker, the dashboard), through one
// sigaction handler in C. A signal DispatchSource on Linux relies on a handler that re-raises
// the signal at libdispatch's manager thread; a run interrupted with SIGINT in CI once ended
// without its verdict that way. The handler below only stores the signal and writes a byte.

import CShims
import Glibc

public enum StopSignals {
    /// Catches SIGINT, SIGTERM and `extra`; each one is recorded and, when `wakeFD` is given,
    /// a byte is written to it (the write end of a non-blocking pipe the caller polls). A second
    /// SIGINT or SIGTERM takes the default action: the process ends at once.
    public static func install(extra: [Int32] = [], wakeFD: Int32 = -1) {
        let sigs = [SIGINT, SIGTERM] + extra
        _ = sigs.withUnsafeBufferPointer { cp_catch_signals($0.baseAddress, Int32($0.count), wakeFD) }
    }

    /// The last stop signal caught since `install`, nil if none.
    public static var caught: Int32? {
        let s = cp_caught_signal()
        return s == 0 ? nil : s
    }

    /// Blocks the calling thread until a stop signal arrives.
    public static func wait() {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)  // the handler must never block on a full pipe
        install(wakeFD: fds[1])
        defer {
            install(wakeFD: -1)  // before closing: the fd number may be reused
            close(fds[0])
            close(fds[1])
        }
        var b: UInt8 = 0
        while caught == nil {
            if read(fds[0], &b, 1) < 0 && errno != EINTR { break }
        }
    }
}

/// SIGWINCH for the dashboard: caught whichever thread the kernel hands it to, so a resize
/// wakes the terminal thread's poll at once instead of at the next refresh tick.
public enum ResizeSignal {
    /// Catches SIGWINCH (after curses is set up: this replaces its handler), writing a byte to
    /// `wakeFD` (the write end of a non-blocking pipe the caller polls) on each one.
    public static func install(wakeFD: Int32) { _ = cp_catch_resize(wakeFD) }

    /// The terminal's new size when it was resized since the last call.
    public static func take(fd: Int32 = 1) -> (rows: Int32, columns: Int32)? {
        var rows: Int32 = 0, columns: Int32 = 0
        return cp_take_resize(fd, &rows, &columns) == 1 ? (rows, columns) : nil
    }
}
