// swift-tools-version: 6.2
import PackageDescription

// Module names are distinctive so that embedding servers can `import RingSFU`
// without clashing with their own targets; folders follow the project layout.
let package = Package(
    name: "ringsfu",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RingSFU", targets: ["RingSFU"]),
        .executable(name: "ringsfu", targets: ["RingSFUServer"]),
        .executable(name: "ringsfu-perf", targets: ["RingSFUPerf"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
    ],
    targets: [
        // C glue: liburing, libsrtp2, OpenSSL, usrsctp and a few libc macros Swift cannot call directly.
        .target(
            name: "RingSFUCShims",
            path: "Sources/CShims",
            linkerSettings: [
                .linkedLibrary("uring"),
                .linkedLibrary("srtp2"),
                .linkedLibrary("ssl"),
                .linkedLibrary("crypto"),
                .linkedLibrary("usrsctp"),
            ]
        ),
        // The data plane: one pinned thread per worker, io_uring, packet memory.
        .target(
            name: "RingSFUForwarder",
            dependencies: ["RingSFUCShims"],
            path: "Sources/Forwarder",
            swiftSettings: [.enableExperimentalFeature("Lifetimes")]
        ),
        // The public API: the entity graph, ORTC, closure cascades, events.
        .target(
            name: "RingSFU",
            dependencies: [
                "RingSFUForwarder",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Sources/Control"
        ),
        .executableTarget(
            name: "RingSFUServer",
            dependencies: [
                "RingSFU",
                "RingSFUCShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/ringsfu"
        ),
        // What the perf CLI measures that deserves its own tests (pure units).
        .target(name: "RingSFUPerfKit", path: "perf/Kit"),
        .executableTarget(
            name: "RingSFUPerf",
            dependencies: [
                "RingSFU",
                "RingSFUPerfKit",
                "RingSFUForwarder",
                "RingSFUCShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ],
            path: "perf/Sources"
        ),
        // Parser fuzzing: libFuzzer entry point with -DFUZZING (see
        // scripts/fuzz.sh), otherwise a replayer of saved inputs.
        .executableTarget(
            name: "RingSFUFuzz",
            dependencies: ["RingSFU", "RingSFUForwarder", "RingSFUCShims"],
            path: "Tests/Fuzz",
            exclude: ["corpus"]
        ),
        .target(
            name: "RingSFUTestSupport",
            dependencies: ["RingSFUForwarder", "RingSFUCShims"],
            path: "Tests/Support"
        ),
        .testTarget(
            name: "RingSFUForwarderTests",
            dependencies: ["RingSFUForwarder", "RingSFUCShims", "RingSFUTestSupport"],
            path: "Tests/ForwarderTests"
        ),
        .testTarget(
            name: "RingSFUTests",
            dependencies: [
                "RingSFU", "RingSFUForwarder", "RingSFUServer", "RingSFUCShims", "RingSFUTestSupport", "RingSFUPerfKit",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Tests/ControlTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
