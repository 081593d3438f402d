// Names for return addresses in another process: /proc/PID/maps says which file an address
// is in and where that file is mapped; the file's ELF symbol tables (.symtab where the binary
// keeps it, else .dynsym) give the function. A site is named by its first frame outside an
// allocation wrapper (a function that does little but call the allocator: mqttclient's
// platform_memory_alloc, paho's mymalloc, libmosquitto's mosquitto__malloc).

import Glibc

/// One mapping of a file into the target.
struct Mapping: Sendable, Hashable {
    var start: UInt64
    var end: UInt64
    var offset: UInt64
    var path: String
}

/// A function symbol of an ELF file: its virtual address range and where its name starts
/// in the file's string table (names are decoded when asked for: a library has thousands).
struct ELFSymbol: Sendable, Hashable {
    var address: UInt64
    var size: UInt64
    var name: Int
}

/// What is kept of one ELF file: its function symbols by address, its string table, and its
/// LOAD segments.
struct ELFFile: Sendable {
    var symbols: [ELFSymbol] = []
    var strings: [UInt8] = []
    var loads: [(offset: UInt64, vaddr: UInt64, size: UInt64)] = []

    func name(_ s: ELFSymbol) -> String {
        guard s.name < strings.count else { return "" }
        let end = strings[s.name...].firstIndex(of: 0) ?? strings.count
        return String(decoding: strings[s.name..<min(end, s.name + 256)], as: UTF8.self)
    }
}

/// Symbolises addresses of one process. Files are parsed once and kept.
public final class Symbolizer: @unchecked Sendable {  // used from one thread at a time (the sampler's)
    public let pid: Int32
    /// Names of functions that only wrap the allocator (besides the ones recognised by name).
    public let wrappers: Set<String>
    private var mappings: [Mapping] = []
    /// Whether /proc/PID/maps may be read again for an address outside every known mapping
    /// (once per sample: a frame outside any file would otherwise re-read it every time).
    private var mayRereadMaps = true
    private var files: [String: ELFFile] = [:]

    public init(pid: Int32, wrappers: [String] = []) {
        self.pid = pid
        self.wrappers = Set(wrappers)
    }

    /// A new sample begins: a library loaded since the last may be looked up.
    public func beginSample() { mayRereadMaps = true }

    /// `mqtt_clean_session+0x3c (libmqttclient.so)`, or `0x7f…  (libfoo.so)` where no symbol
    /// is known, or the bare address outside any file.
    public func describe(_ address: UInt64) -> String {
        let (symbol, file) = resolve(address)
        let base = file.map { " (" + ($0.split(separator: "/").last.map(String.init) ?? $0) + ")" } ?? ""
        guard let (name, offset) = symbol else { return "0x" + String(address, radix: 16) + base }
        return name + (offset == 0 ? "" : "+0x" + String(offset, radix: 16)) + base
    }

    /// The name of a site: its first frame that is not an allocation wrapper (the last frame
    /// if all are), without the offset: `mqtt_clean_session (libmqttclient.so)`.
    public func siteName(_ frames: [UInt64]) -> String {
        guard !frames.isEmpty else { return "other sites (the tap's table was full)" }
        var chosen = frames.last!
        for f in frames {
            let (symbol, _) = resolve(f)
            if let (name, _) = symbol, isWrapper(name) { continue }
            chosen = f
            break
        }
        let (symbol, file) = resolve(chosen)
        let lib = file.map { " (" + ($0.split(separator: "/").last.map(String.init) ?? $0) + ")" } ?? ""
        return (symbol?.0 ?? "0x" + String(chosen, radix: 16)) + lib
    }

    /// A wrapper by the names users give (`--alloc-wrapper`) or by its own name: it mentions
    /// allocating (malloc, calloc, realloc, strdup, alloc…) or is C++'s operator new.
    func isWrapper(_ name: String) -> Bool {
        if wrappers.contains(name) { return true }
        let n = name.lowercased()
        return n.contains("alloc") || n.contains("strdup") || n.hasPrefix("_znw") || n.hasPrefix("_zna")
    }

    /// The symbol (name, offset in it) and the file an address falls in.
    func resolve(_ address: UInt64) -> ((String, UInt64)?, String?) {
        var m = mappings.first { $0.start <= address && address < $0.end }
        if m == nil && mayRereadMaps {
            mayRereadMaps = false
            mappings = Self.readMaps(pid: pid)  // a library loaded since the last read
            m = mappings.first { $0.start <= address && address < $0.end }
        }
        guard let m, m.path.hasPrefix("/") else { return (nil, m?.path) }
        if files[m.path] == nil { files[m.path] = Self.readELF(m.path) ?? ELFFile() }
        let elf = files[m.path]!
        let fileOffset = address - m.start + m.offset
        // The address as the file's symbols see it: through the LOAD segment holding it.
        guard let load = elf.loads.first(where: { $0.offset <= fileOffset && fileOffset < $0.offset + $0.size }) else {
            return (nil, m.path)
        }
        let vaddr = fileOffset - load.offset + load.vaddr
        // The last symbol starting at or below the address; inside it, or the nearest when sizes are unknown.
        var lo = 0, hi = elf.symbols.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if elf.symbols[mid].address <= vaddr { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return (nil, m.path) }
        let s = elf.symbols[lo - 1]
        if s.size != 0 && vaddr >= s.address + s.size { return (nil, m.path) }
        return ((elf.name(s), vaddr - s.address), m.path)
    }

    /// `start-end perms offset dev inode path` per line of /proc/PID/maps (file mappings only).
    static func readMaps(pid: Int32) -> [Mapping] {
        guard let bytes = ProcFile.read("/proc/\(pid)/maps", initialCapacity: 65_536) else { return [] }
        var out: [Mapping] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5 else { continue }
            let range = fields[0].split(separator: UInt8(ascii: "-"))
            guard range.count == 2, let start = UInt64(String(decoding: range[0], as: UTF8.self), radix: 16),
                let end = UInt64(String(decoding: range[1], as: UTF8.self), radix: 16),
                let offset = UInt64(String(decoding: fields[2], as: UTF8.self), radix: 16)
            else { continue }
            var path = fields.count == 6 ? String(decoding: fields[5], as: UTF8.self) : ""
            while path.first == " " { path.removeFirst() }
            out.append(Mapping(start: start, end: end, offset: offset, path: path))
        }
        return out
    }

    /// Function symbols sorted by address, the string table, and the LOAD segments of a
    /// 64-bit little-endian ELF.
    static func readELF(_ path: String) -> ELFFile? {
        guard let data = ProcFile.read(path, initialCapacity: 1 << 20), data.count > 64,
            data[0] == 0x7F, data[1] == 0x45, data[2] == 0x4C, data[3] == 0x46, data[4] == 2, data[5] == 1
        else { return nil }
        return data.withUnsafeBytes { raw -> ELFFile in
            func u16(_ o: Int) -> UInt64 { o >= 0 && o + 2 <= raw.count ? UInt64(raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)) : 0 }
            func u32(_ o: Int) -> UInt64 { o >= 0 && o + 4 <= raw.count ? UInt64(raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)) : 0 }
            func u64(_ o: Int) -> UInt64 { o >= 0 && o + 8 <= raw.count ? raw.loadUnaligned(fromByteOffset: o, as: UInt64.self) : 0 }
            var file = ELFFile()
            let phoff = Int(clamping: u64(0x20)), shoff = Int(clamping: u64(0x28))
            let phentsize = Int(u16(0x36)), phnum = Int(u16(0x38))
            let shentsize = Int(u16(0x3A)), shnum = Int(u16(0x3C))
            for i in 0..<phnum {
                let p = phoff + i * phentsize
                guard p + 56 <= raw.count else { break }
                if u32(p) == 1 { file.loads.append((offset: u64(p + 8), vaddr: u64(p + 16), size: u64(p + 32))) }  // PT_LOAD
            }
            // Section headers: SHT_SYMTAB (2) preferred, else SHT_DYNSYM (11); their sh_link is the string table.
            var tables: [(type: UInt64, offset: Int, size: Int, entsize: Int, strtab: Int)] = []
            for i in 0..<shnum {
                let s = shoff + i * shentsize
                guard s + 64 <= raw.count else { break }
                let type = u32(s + 4)
                if type == 2 || type == 11 {
                    tables.append((type, Int(clamping: u64(s + 0x18)), Int(clamping: u64(s + 0x20)), Int(clamping: u64(s + 0x38)), Int(u32(s + 0x28))))
                }
            }
            guard let t = tables.first(where: { $0.type == 2 }) ?? tables.first(where: { $0.type == 11 }), t.entsize >= 24 else { return file }
            let strSection = shoff + t.strtab * shentsize
            let strOffset = Int(clamping: u64(strSection + 0x18)), strSize = Int(clamping: u64(strSection + 0x20))
            guard strOffset >= 0, strOffset <= raw.count else { return file }
            file.strings = Array(raw[strOffset..<min(raw.count, strOffset &+ strSize)])
            let count = t.size / t.entsize
            file.symbols.reserveCapacity(count)
            for i in 0..<count {
                let e = t.offset + i * t.entsize
                guard e + 24 <= raw.count else { break }
                guard raw[e + 4] & 0xF == 2 else { continue }  // STT_FUNC
                let value = u64(e + 8)
                guard value != 0 else { continue }
                file.symbols.append(ELFSymbol(address: value, size: u64(e + 16), name: Int(u32(e))))
            }
            file.symbols.sort { $0.address < $1.address }
            return file
        }
    }
}
