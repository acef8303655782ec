// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "slipway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "slipway", targets: ["slipway"]),
        .executable(name: "slipway-bench", targets: ["slipway-bench"]),
        .library(name: "GitKit", targets: ["GitKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
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
        // Pipeline files and the step runner.
        .target(
            name: "Pipeline",
            dependencies: [
                "GitKit",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        // Releases on disk, the store, the queue, watchers, rollback: the daemon's core.
        .target(
            name: "Deploy",
            dependencies: [
                "GitKit",
                "Pipeline",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "slipway",
            dependencies: [
                "GitKit",
                "Pipeline",
                "Deploy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "slipway-bench",
            dependencies: [
                "GitKit",
                "Pipeline",
                "Deploy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "TestSupport",
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "GitKitTests",
            dependencies: ["GitKit", "TestSupport"]
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: ["Pipeline", "TestSupport"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "DeployTests",
            dependencies: ["Deploy", "TestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
