// swift-tools-version: 6.1
// mshmon: a terminal dashboard for hunting leaks in MQTT clients. Module map: README.md.
// Linux only: it reads /proc, NETLINK_SOCK_DIAG and glibc's allocator.
import PackageDescription

let package = Package(
    name: "mshmon",
    products: [
        .executable(name: "mshmon", targets: ["mshmon"]),
        .library(name: "MQTTPacket", targets: ["MQTTPacket"]),
        .library(name: "Probes", targets: ["Probes"]),
        .library(name: "Msh", targets: ["Msh"]),
        .library(name: "Ledger", targets: ["Ledger"]),
        .library(name: "MQTTClient", targets: ["MQTTClient"]),
        // The heap tap injected into launched targets (LD_PRELOAD): C only, no Swift runtime.
        .library(name: "mshmontap", type: .dynamic, targets: ["CHeapTap"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "MQTTPacket",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(name: "Ledger"),
        .target(name: "ChildProcess", dependencies: ["CShims"]),
        .target(name: "CShims"),
        .target(name: "CTapLayout"),
        .target(name: "CHeapTap", dependencies: ["CTapLayout"],
                cSettings: [.unsafeFlags(["-fno-omit-frame-pointer", "-O2"])],
                linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("pthread"), .unsafeFlags(["-nostartfiles", "-static-stdlib", "-Xlinker", "--as-needed"])]),
        .target(name: "Probes", dependencies: ["CShims", "CTapLayout", "Ledger"]),
        .target(name: "Msh", dependencies: ["Probes", "Ledger"]),
        // A device watched through its msh console: serial, telnet or a program on a pty; its replies parsed.
        .target(name: "Console", dependencies: ["Probes", "Ledger", "ChildProcess"]),
        // The client's protocol state machine, without I/O: commands, packets and the time in, actions out.
        .target(
            name: "MQTTSession",
            dependencies: ["MQTTPacket", "Ledger", .product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "MQTTClient",
            dependencies: [
                "MQTTPacket", "MQTTSession", "Ledger",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
            ]),
        .target(
            name: "MQTTBroker",
            dependencies: [
                "MQTTPacket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]),
        .target(
            name: "Monitor",
            dependencies: ["MQTTClient", "MQTTBroker", "MQTTPacket", "Probes", "Msh", "Ledger",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "Prometheus", package: "swift-prometheus")]),
        .systemLibrary(name: "CNCurses", pkgConfig: "ncursesw", providers: [.apt(["libncursesw5-dev"])]),
        .target(
            name: "TUI",
            dependencies: ["CNCurses", "ChildProcess", "Monitor", "Msh", "Probes", "Ledger", "MQTTClient", "MQTTPacket",
                           .product(name: "NIOCore", package: "swift-nio")]),
        .executableTarget(
            name: "mshmon",
            dependencies: [
                "MQTTPacket", "MQTTClient", "MQTTBroker", "Monitor", "Msh", "Probes", "Ledger", "ChildProcess", "TUI", "Console",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // For the dashboard's RSS (scripts/bench-rss): -static-stdlib brings
            // `-export-dynamic`, which exported every symbol of ours (their tables read at each
            // start, and kept alive past --gc-sections); and as a PIE the dynamic linker
            // applied the relocations of all of Swift's metadata at start, touching and
            // dirtying their pages. The binary's own code then sits at a fixed address (its
            // stack, heap and libraries are still randomised), as Go's executables do.
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-l_FoundationCollections", "-l_FoundationCShims",
                                           "-Xlinker", "--no-export-dynamic", "-Xclang-linker", "-no-pie"])]),
        // libFuzzer harness for the packet decoder; see scripts/fuzz.
        .target(name: "CFuzzDriver"),
        .executableTarget(
            name: "MQTTPacketFuzz",
            dependencies: ["MQTTPacket", "CFuzzDriver", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(
            name: "ProbesTests",
            dependencies: ["Probes", "Msh", "Ledger", "ChildProcess", "TestSupport"],
            resources: [.copy("Fixtures")]),
        .target(name: "TestSupport", dependencies: ["ChildProcess", "Probes"], path: "Tests/TestSupport"),
        .testTarget(
            name: "MQTTClientTests",
            dependencies: [
                "MQTTClient", "MQTTSession", "MQTTPacket", "Ledger", "Probes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                "ChildProcess", "TestSupport",
            ]),
        .testTarget(
            name: "MQTTBrokerTests",
            dependencies: ["MQTTBroker", "MQTTClient", "MQTTPacket", "Probes", "Ledger", "TestSupport",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")]),
        .testTarget(
            name: "TUITests",
            dependencies: ["TUI", "Probes", "Ledger", "MQTTClient", "Msh", "TestSupport"]),
        .testTarget(
            name: "MonitorTests",
            dependencies: ["Monitor", "MQTTClient", "MQTTBroker", "MQTTPacket", "Probes", "Ledger", "ChildProcess", "TestSupport",
                           .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(
            name: "ConsoleTests",
            dependencies: ["Console", "Probes", "Ledger", "ChildProcess", "TestSupport"]),
        .testTarget(
            name: "MQTTPacketTests",
            dependencies: [
                "MQTTPacket", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
    ]
)
