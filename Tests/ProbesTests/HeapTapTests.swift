// The heap tap in a real process (Tests/Targets/tap_exercise.c under LD_PRELOAD): exact
// totals per call site for every interposed call, under eight threads, across fork and exec,
// and in a target that closes every fd; the sites named from the target's ELF symbols.

import ChildProcess
import Probes
import Testing
import TestSupport

import Glibc

@Suite(.serialized, .timeLimit(.minutes(3)))
struct HeapTapTests {
    /// The exerciser in `mode` under the tap, once it is ready (or once `until` holds).
    func launch(_ mode: String, until: ((ProcessSampler) -> Bool)? = nil) async throws -> (ChildProcess, HeapTap, ProcessSampler) {
        let exe = try CTargets.build("tap_exercise", libraries: ["pthread"])
        #expect(access(CTargets.tapLibrary, R_OK) == 0, "swift build makes \(CTargets.tapLibrary)")
        let tap = try HeapTap()
        let child = try ChildProcess(path: exe, arguments: [mode], captureOutput: true, environment: tap.environment(library: CTargets.tapLibrary))
        let sampler = try ProcessSampler(pid: child.pid, tap: tap)
        if let until {
            #expect(await waitUntil(30) { until(sampler) }, "\(mode): what the test waits for came within 30 s")
        } else {
            #expect(child.readLine(timeout: 60) == "ready", "\(mode) ran to its end (exit \(child.poll().map(String.init) ?? "none yet"))")
        }
        return (child, tap, sampler)
    }

    /// Live blocks and bytes at the sites named after `function`.
    func live(_ snap: Snapshot?, in function: String) -> (blocks: Int, bytes: Int) {
        let sites = (snap?.sites ?? []).filter { $0.name?.hasPrefix(function + " ") == true }
        return (sites.reduce(0) { $0 + $1.liveBlocks }, sites.reduce(0) { $0 + $1.liveBytes })
    }

    @Test func everyInterposedCallIsCountedExactly() async throws {
        let (child, tap, sampler) = try await launch("script")
        defer { child.stop(grace: 1) }
        let snap = sampler.sample()
        #expect(tap.owner == child.pid && snap?.heapSource == .tap)
        let got = live(snap, in: "scripted")
        #expect(got.blocks == 7 && got.bytes == 300 + 40 + 50 + 512 + 33 + 10 + 4096, "\(got)")
        #expect(snap?.sites?.first { $0.name?.hasPrefix("scripted ") == true }?.name == "scripted (tap_exercise)")
        #expect((snap?.heap.used ?? 0) >= got.bytes && (snap?.heap.maximum ?? 0) >= (snap?.heap.used ?? 0))
    }

    @Test func eightThreadsOfAMillionMixedOperationsEndExact() async throws {
        let (child, _, sampler) = try await launch("threads")
        defer { child.stop(grace: 1) }
        let got = live(sampler.sample(), in: "thread_worker")
        #expect(got.blocks == 8 * 100 && got.bytes == 8 * 100 * 24, "\(got) \(sampler.sample()?.sites?.prefix(6).map { "\($0.name ?? "?") \($0.liveBlocks) \($0.liveBytes)" } ?? [])")
    }

    @Test func aForkedChildAndAnExecdProgramKeepTheirOwnCounts() async throws {
        let (child, tap, sampler) = try await launch("fork-exec")
        defer { child.stop(grace: 1) }
        let snap = sampler.sample()
        #expect(tap.owner == child.pid, "the table stays the parent's")
        let parent = live(snap, in: "parent_work")
        #expect(parent.blocks == 15 && parent.bytes == 15 * 16, "\(parent)")
        #expect(live(snap, in: "child_work").blocks == 0, "neither the forked child's nor the exec'd program's 1,000 blocks")
    }

    @Test func aTargetThatClosesEveryFDStillCounts() async throws {
        let (child, _, sampler) = try await launch("close-fds") { self.live($0.sample(), in: "after_close").blocks == 3 }
        defer { child.stop(grace: 1) }
        let got = live(sampler.sample(), in: "after_close")
        #expect(got.blocks == 3 && got.bytes == 192, "\(got)")
        #expect(sampler.sample()?.fds.isEmpty == true, "it closed 0 to 1023")
    }
}
