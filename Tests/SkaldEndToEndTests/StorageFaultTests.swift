import Foundation
import Glibc
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldSQLite
import Testing
import SkaldTestSupport

/// Real storage faults under the real server: a disk that fills up (a small tmpfs) and another process that
/// holds the database's write lock. Needs root, as CI and this machine have, to mount the tmpfs.
@Suite(.serialized, .tags(.root, .python), .needs(.root, .python), .timeLimit(.minutes(10))) struct StorageFaultTests {
    @Test func aFullDiskAndALockHeldByAnotherProcessLoseNothingAndSendNothingUnstored() async throws {
        try await Participant.withRunning { participants in
            let folder = try temporaryFolder()
            let disk = folder.appendingPathComponent("disk")
            try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
            let mounted = try await SkaldProcess.shell(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk.path], in: folder)
            try #require(mounted.status == 0, "mounting a small tmpfs needs root: \(mounted.stderr)")
            defer { _ = umount2(disk.path, Int32(MNT_DETACH)) }
            let db = disk.appendingPathComponent("s.sqlite").path
            let server = try await ServeProcess(db: db, environment: participants.environment, in: folder, sagas: try PatientSagas.folder(in: folder), extra: ["--busy-timeout", "200ms"])
            defer { server.kill9() }

            try await withHTTPClient { http in
                let api = APIClient(http: http, base: server.url)
                func start(_ order: String) async throws -> (Int, JSONValue) {
                    try await api.call(.POST, "/v1/runs", ["saga": "checkout", "input": DemoSagas.checkoutInput(orderId: order)])
                }
                @Sendable func status(_ id: String) async throws -> String? { try await api.call(.GET, "/v1/runs/\(id)").json["status"]?.stringValue }

                // 1. The disk fills up while a call is in flight.
                await participants[.shipping].setFaults(Faults(hold: true))
                let (_, first) = try await start("full-1")
                let firstID = try #require(first["id"]?.stringValue)
                await participants[.shipping].waitForHeld()
                let filler = disk.appendingPathComponent("filler")
                FileManager.default.createFile(atPath: filler.path, contents: nil)
                let handle = try FileHandle(forWritingTo: filler)
                let chunk = Data(count: 64 * 1024)
                while (try? handle.write(contentsOf: chunk)) != nil {}
                try? handle.close()
                await participants[.shipping].setFaults(Faults())
                await participants[.shipping].releaseHeld()
                try await waitFor("the health check to report the full disk") {
                    (try? await api.call(.GET, "/health").status) == 503
                }
                let refused = try await start("full-2")
                #expect(refused.0 == 503)
                #expect(refused.1["error"]?["message"]?.stringValue?.contains("the disk holding the database is full") == true, "\(refused.1)")

                try FileManager.default.removeItem(at: filler)
                try await waitFor("the run in flight to finish once the disk has room") { (try? await status(firstID)) == "completed" }
                try await waitFor("the health check to recover") { (try? await api.call(.GET, "/health").status) == 200 }

                // 2. Another process holds the write lock.
                let release = folder.appendingPathComponent("release")
                let holder = try SkaldProcess.python(
                    """
                    import os, sqlite3, sys, time
                    db = sqlite3.connect(sys.argv[1], isolation_level=None)
                    db.execute("BEGIN IMMEDIATE")
                    print("locked", flush=True)
                    while not os.path.exists(sys.argv[2]):
                        time.sleep(0.01)
                    db.execute("ROLLBACK")
                    """, [db, release.path], in: folder)
                try await waitFor("the other process to take the lock") { holder.stdout.contains("locked") }
                let locked = try await start("lock-1")
                #expect(locked.0 == 503)
                #expect(locked.1["error"]?["message"]?.stringValue?.contains("another process holds the database's write lock") == true, "\(locked.1)")
                _ = FileManager.default.createFile(atPath: release.path, contents: nil)
                _ = await holder.waitForExit()
                let (created, after) = try await start("lock-2")
                #expect(created == 201)
                let afterID = try #require(after["id"]?.stringValue)
                try await waitFor("the run started after the lock to finish") { (try? await status(afterID)) == "completed" }
            }

            // No call went out whose intent was not stored first, and none was applied twice.
            server.terminate()
            _ = await server.waitForExit()
            let store = try SQLiteStore(path: db)
            var stored: Set<String> = []
            for run in try await store.listRuns(RunQuery(limit: 500)).runs {
                for attempt in try await store.attempts(runID: run.id) { stored.insert(attempt.key.idempotencyKey) }
            }
            for kind in Participant.Kind.allCases {
                for (key, count) in await participants[kind].applicationsPerKey {
                    #expect(stored.contains(key), "\(kind) applied \(key), whose attempt is not in the database")
                    #expect(count == 1, "\(kind) applied \(key) \(count) times")
                }
            }
            #expect(server.process.stdout.contains("the disk holding the database is full") || server.process.stderr.contains("the disk holding the database is full"))
        }
    }
}

extension SkaldProcess {
    /// Runs a system command to the end.
    static func shell(_ command: [String], in folder: URL, environment: [String: String] = [:]) async throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        env.removeValue(forKey: "NO_COLOR")
        let child = try ChildProcess(executable: command[0], Array(command.dropFirst()), environment: env, directory: folder, outputIn: folder)
        let status = await child.waitForExit().status
        return (status, child.stdout, child.stderr)
    }

    /// A Python script in its own process (another process than the server, as a sqlite3 shell would be).
    static func python(_ script: String, _ arguments: [String], in folder: URL) throws -> ChildProcess {
        let file = folder.appendingPathComponent("script-\(UUID().uuidString).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        return try ChildProcess(
            executable: "python3", [file.path] + arguments, environment: ProcessInfo.processInfo.environment, directory: folder, outputIn: folder)
    }
}
