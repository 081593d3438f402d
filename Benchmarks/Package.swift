// swift-tools-version: 6.1
// On-demand benchmarks (not run by the tests): cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "mshmon-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "mshmon", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "CodecBench",
            dependencies: [
                .product(name: "MQTTPacket", package: "mshmon"),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/CodecBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "ProbesBench",
            dependencies: [
                .product(name: "Probes", package: "mshmon"),
                .product(name: "Msh", package: "mshmon"),
                .product(name: "Ledger", package: "mshmon"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ProbesBench",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        // Not a Benchmark target (the plugin runs every executable under Benchmarks/, so it lives in
        // Peers/): a peer for ../shared/bench/bench_cycles.sh (see its header).
        .executableTarget(
            name: "NIOCycleFloor",
            dependencies: [
                .product(name: "MQTTClient", package: "mshmon"),  // its LoopbackConnect only
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Peers/NIOCycleFloor"),
        // The heap one open connection holds, plain or TLS (scripts/bench-tls).
        .executableTarget(
            name: "ConnectionHeap",
            dependencies: [
                .product(name: "MQTTClient", package: "mshmon"),
                .product(name: "Probes", package: "mshmon"),
            ],
            path: "Peers/ConnectionHeap"),
    ]
)
