// The C programs in Tests/Targets, compiled with gcc for the tests that watch a foreign
// process (once per test process, in a temporary folder), and the heap tap library that
// `swift build` puts beside the test bundle. A missing compiler or library fails the test
// loudly: scripts/test installs gcc and libmosquitto-dev.

import ChildProcess
import Synchronization

import Glibc

public enum CTargets {
    /// The package's root folder (this file is Tests/TestSupport/CTargets.swift).
    public static let packageRoot: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    /// The folder of the running test bundle (where swift build also puts libmshmontap.so).
    public static let binFolder: String = {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        let exe = String(decoding: buf[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    }()

    public static var tapLibrary: String { binFolder + "/libmshmontap.so" }

    private static let built = Mutex<[String: String]>([:])

    /// Tests/Targets/NAME.c compiled (with `libraries`), or the reason it could not be.
    public static func build(_ name: String, libraries: [String] = []) throws -> String {
        if let path = built.withLock({ $0[name] }) { return path }
        var template = Array("/tmp/mshmon-ctargets-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template) else { throw ChildProcessError(path: "mkdtemp", reason: "failed") }
        let output = String(cString: dir) + "/" + name
        let log = output + ".log"
        let gcc = ["/usr/bin/gcc", "/usr/bin/cc"].first { (path: String) in access(path, X_OK) == 0 }
        guard let gcc else { throw ChildProcessError(path: "gcc", reason: "not installed (scripts/test installs it)") }
        let p = try ChildProcess(path: gcc, arguments: ["-O2", "-Wall", "-o", output, "\(packageRoot)/Tests/Targets/\(name).c"]
                                 + libraries.map { "-l" + $0 }, outputPath: log)
        guard p.wait() == 0 else {
            let text = ProcFileText.read(log)
            throw ChildProcessError(path: "gcc", reason: "\(name).c did not compile: \(text)")
        }
        built.withLock { $0[name] = output }
        return output
    }
}

enum ProcFileText {
    static func read(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true { let n = Glibc.read(fd, &buf, buf.count); if n <= 0 { break }; out += buf[0..<n] }
        return String(decoding: out, as: UTF8.self)
    }
}
