// swift-tools-version: 6.1
import PackageDescription

// Slipway runs on Linux only: it uses /proc, process groups, prctl and Linux's file system calls. No `platforms:`
// entry is given, since SwiftPM has none for Linux.
let package = Package(
    name: "slipway",
    products: [
        .executable(name: "slipway", targets: ["slipway"]),
        .executable(name: "slipway-bench", targets: ["slipway-bench"]),
        .library(name: "GitKit", targets: ["GitKit"]),
        .library(name: "SlipwayClient", targets: ["SlipwayClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.21.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
        // The next four come with the packages above; they are named because Slipway's own code imports them.
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        // The C library and nothing else.
        .systemLibrary(
            name: "CLibGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev", "pkg-config"])]
        ),
        // The safe Swift layer over libgit2; the only target that imports CLibGit2.
        .target(
            name: "GitKit",
            dependencies: ["CLibGit2"]
        ),
        // The contract's vocabulary (statuses, phases, triggers) and the API's JSON objects, shared by the daemon,
        // the server and the client.
        .target(name: "SlipwayAPI"),
        // Words for why an HTTP request got no answer, for the health check's log and the client's messages.
        .target(
            name: "ConnectionText",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Pipeline files and the step runner.
        .target(
            name: "Pipeline",
            dependencies: [
                "SlipwayAPI",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The daemon's core behind one protocol, `Engine`: intake, mirrors, the queue, deployment runs, releases
        // on disk, the store, recovery.
        .target(
            name: "Deploy",
            dependencies: [
                "GitKit",
                "Pipeline",
                "SlipwayAPI",
                "ConnectionText",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                // The public ports' forwarder (`PortForwarder`).
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // HTTP: the routes over `Engine`, webhooks, SSE, the dashboard and openapi.yaml (compiled in), metrics.
        .target(
            name: "Server",
            dependencies: [
                "Deploy",
                "SlipwayAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("Resources/dashboard.html"), .embedInCode("Resources/openapi.yaml")]
        ),
        // The command line's side of the API: the HTTP client, the SSE parser and log follower, human output, and
        // the git hook installer.
        .target(
            name: "SlipwayClient",
            dependencies: [
                "SlipwayAPI",
                "ConnectionText",
                "GitKit",
                "Pipeline",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            // The project's hooks/post-receive and hooks/pre-receive, through symlinks, so that the binary carries the
            // scripts it installs.
            resources: [.embedInCode("Resources/post-receive"), .embedInCode("Resources/pre-receive")]
        ),
        // The executable: argument parsing and wiring.
        .executableTarget(
            name: "slipway",
            dependencies: [
                "Deploy",
                "GitKit",
                "Pipeline",
                "Server",
                "SlipwayClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "slipway-bench",
            dependencies: [
                "GitKit",
                "TestSupport",
                "Pipeline",
                "Deploy",
                "Server",
                "SlipwayAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "Deploy",
                "SlipwayAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "GitKitTests",
            dependencies: ["GitKit", "TestSupport"]
        ),
        .testTarget(
            name: "PipelineTests",
            // GitKit only to check that Pipeline's branch-name rule gives libgit2's answers.
            dependencies: ["Pipeline", "GitKit", "SlipwayAPI", "TestSupport", .product(name: "Yams", package: "Yams")],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "DeployTests",
            dependencies: [
                "Deploy", "GitKit", "Pipeline", "SlipwayAPI", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Deploy", "Pipeline", "SlipwayAPI", "SlipwayClient", "TestSupport", "GitKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SlipwayClientTests",
            dependencies: [
                "SlipwayClient", "SlipwayAPI", "Pipeline", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["TestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
