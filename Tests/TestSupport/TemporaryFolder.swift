// A folder under /tmp for one test, and its removal with everything in it.

import ChildProcess
import Glibc

public enum TemporaryFolder {
    /// A new, empty folder `/tmp/PREFIX-XXXXXX`; pair it with `defer { TemporaryFolder.remove(path) }`.
    public static func make(_ prefix: String = "mshmon-test") throws -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ChildProcessError(path: "/tmp/\(prefix)-XXXXXX", reason: String(cString: strerror(errno)))
        }
        return String(cString: made)
    }

    /// Removes `path` and what is below it (the folder's own files; no links are followed).
    public static func remove(_ path: String) {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
                if name == "." || name == ".." { continue }
                let child = path + "/" + name
                var st = stat()
                if lstat(child, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { remove(child) } else { unlink(child) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}
