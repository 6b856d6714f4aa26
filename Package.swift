// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "skald",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "skald", targets: ["skald"]),
        .library(name: "SkaldCore", targets: ["SkaldCore"]),
        .library(name: "SkaldEngine", targets: ["SkaldEngine"]),
        .library(name: "SkaldAPI", targets: ["SkaldAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // Definition model, validation, templates, backoff maths and the pure saga state machine.
        // Foundation only: no I/O, no clock, no logger.
        .target(name: "SkaldCore"),
        // The HTTP API's contract: its endpoints and the Codable shapes the server sends and the CLI reads.
        .target(name: "SkaldAPI", dependencies: ["SkaldCore", .product(name: "HTTPTypes", package: "swift-http-types")]),
        // Store and executor seams, the engine that drives runs, an in-memory store.
        .target(
            name: "SkaldEngine",
            dependencies: [
                "SkaldCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The SQLite store.
        .target(
            name: "SkaldSQLite",
            dependencies: ["SkaldEngine", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "CoreMetrics", package: "swift-metrics")]
        ),
        // The HTTP step executor.
        // The PostgreSQL store, for several engines on one database.
        .target(
            name: "SkaldPostgres",
            dependencies: [
                "SkaldEngine",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // Only for the type of the pool's own errors (it could not connect, or was shut down).
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "SkaldHTTP",
            dependencies: [
                "SkaldEngine",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Built-in participant services (inventory, payments, shipping) for the demo and tests.
        .target(
            name: "SkaldDemo",
            dependencies: [
                "SkaldCore", "SkaldSQLite", "SkaldPostgres",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The example sagas, embedded for a demo run away from the repository (links to Sagas/).
            resources: [
                .embedInCode("Resources/checkout.json"), .embedInCode("Resources/trip.json"), .embedInCode("Resources/refund.json"),
                .embedInCode("Resources/payment-webhook.json"), .embedInCode("Resources/order-items.json"),
            ]
        ),
        // The HTTP status and control API.
        .target(
            name: "SkaldServer",
            dependencies: [
                "SkaldAPI", "SkaldEngine", "SkaldSQLite", "SkaldPostgres",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            // The document served at /v1/openapi.json and the console served at / (links to docs/ and console/),
            // embedded in the binary, which stays one file.
            resources: [.embedInCode("Resources/openapi.json"), .embedInCode("Resources/console.html")]
        ),
        // Records the commit the binary is built from, for `skald --version`.
        .plugin(name: "BuildInfo", capability: .buildTool()),
        // The composition root.
        .executableTarget(
            name: "skald",
            dependencies: [
                "SkaldAPI", "SkaldCore", "SkaldEngine", "SkaldSQLite", "SkaldPostgres", "SkaldHTTP", "SkaldDemo", "SkaldServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            plugins: ["BuildInfo"]
        ),
        // What the tests share: waiting on a condition, the repository's root, the parts some suites need
        // (`TestPart`, `SKALD_TEST_SKIP`) and the database kinds they run on. Not part of the binary.
        .target(
            name: "SkaldTestSupport",
            dependencies: ["SkaldEngine", "SkaldSQLite", "SkaldPostgres", "SkaldDemo"],
            path: "Tests/SkaldTestSupport"
        ),
        .testTarget(name: "SkaldCoreTests", dependencies: ["SkaldCore", "SkaldTestSupport"]),
        .testTarget(name: "SkaldEngineTests", dependencies: ["SkaldEngine", "SkaldSQLite", "SkaldPostgres", "SkaldDemo", "SkaldTestSupport"]),
        .testTarget(
            name: "SkaldSQLiteTests", dependencies: ["SkaldSQLite", "SkaldTestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "SkaldStoreTests",
            dependencies: [
                "SkaldSQLite", "SkaldPostgres", "SkaldDemo", "SkaldTestSupport", .product(name: "PostgresNIO", package: "postgres-nio"),
            ]),
        .testTarget(
            name: "SkaldHTTPTests",
            dependencies: [
                "SkaldHTTP", "SkaldDemo", "SkaldTestSupport", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SkaldServerTests",
            dependencies: [
                "SkaldAPI", "SkaldServer", "SkaldSQLite", "SkaldPostgres", "SkaldDemo", "SkaldHTTP", "SkaldTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "SkaldEndToEndTests",
            dependencies: [
                "skald", "SkaldAPI", "SkaldCore", "SkaldEngine", "SkaldSQLite", "SkaldPostgres", "SkaldDemo", "SkaldTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
