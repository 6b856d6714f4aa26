import Foundation
import SkaldCore
import SkaldTestSupport
import Testing

/// `skald serve`'s settings from flags, SKALD_* variables and a `--config` file, in that order of precedence.
@Suite(.timeLimit(.minutes(5))) struct ConfigTests {
    func write(_ text: String, in folder: URL, name: String = "skald.json") throws -> String {
        let file = folder.appendingPathComponent(name)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheFileAndSecretsAreMasked() async throws {
        let folder = try temporaryFolder()
        let config = try write(
            #"{"port": 7001, "lease": "20s", "log-level": "debug", "allowed-host": ["a.example.com", "b.example.com"], "metrics-public": true}"#,
            in: folder)
        let printed = try await SkaldProcess.run(
            ["serve", "--config", config, "--log-level", "warning", "--print-config"],
            environment: ["SKALD_PORT": "7999", "SKALD_TOKEN": "s3cret-token", "SKALD_DB": "postgres://skald:hunter2@127.0.0.1:5432/skald"],
            in: folder)
        #expect(printed.status == 0, "\(printed.stdout)\(printed.stderr)")
        func row(_ name: String) -> String {
            printed.stdout.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map(String.init) ?? "no row for \(name)"
        }
        #expect(row("port").contains("7999") && row("port").contains("environment SKALD_PORT"), "\(row("port"))")
        #expect(row("lease").contains("20s") && row("lease").contains("file \(config)"), "\(row("lease"))")
        #expect(row("log-level").contains("warning") && row("log-level").contains("command line"), "\(row("log-level"))")
        #expect(row("allowed-host").contains("a.example.com,b.example.com"), "\(row("allowed-host"))")
        #expect(row("metrics-public").contains("true"), "\(row("metrics-public"))")
        #expect(row("shutdown-timeout").contains("30s") && row("shutdown-timeout").contains("default"), "\(row("shutdown-timeout"))")
        #expect(row("token").contains("***") && !printed.stdout.contains("s3cret-token"))
        #expect(row("db").contains("postgres://skald:***@127.0.0.1:5432/skald") && !printed.stdout.contains("hunter2"), "\(row("db"))")
    }

    @Test func aBadSettingIsReportedWithWhereItCameFrom() async throws {
        let folder = try temporaryFolder()
        let badValue = try write(#"{"port": "many"}"#, in: folder, name: "bad-value.json")
        let refused = try await SkaldProcess.run(["serve", "--config", badValue, "--print-config"], in: folder)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("file \(badValue): ") && refused.stderr.contains("many"), "\(refused.stderr)")

        let unknown = try write(#"{"prot": 7400}"#, in: folder, name: "unknown.json")
        let typo = try await SkaldProcess.run(["serve", "--config", unknown, "--print-config"], in: folder)
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("unknown setting \"prot\"") && typo.stderr.contains("port"), "\(typo.stderr)")

        let broken = try write("{\"port\": 7400,\n  oops}", in: folder, name: "broken.json")
        let malformed = try await SkaldProcess.run(["serve", "--config", broken, "--print-config"], in: folder)
        #expect(malformed.status == 2)
        #expect(malformed.stderr.contains("\(broken):2:"), "the line of the mistake: \(malformed.stderr)")

        let flag = try await SkaldProcess.run(["serve", "--print-config"], environment: ["SKALD_METRICS_PUBLIC": "maybe"], in: folder)
        #expect(flag.status == 2)
        #expect(flag.stderr.contains("environment SKALD_METRICS_PUBLIC: must be true or false"), "\(flag.stderr)")

        let missing = try await SkaldProcess.run(["serve", "--config", folder.appendingPathComponent("none.json").path], in: folder)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("cannot read it"), "\(missing.stderr)")
    }

    /// A running server takes what the file says: here its token, so a call without it is refused.
    @Test func aServerStartedWithAConfigFileUsesIt() async throws {
        let folder = try temporaryFolder()
        let config = try write(#"{"token": "from-the-file", "read-timeout": "20s"}"#, in: folder)
        let server = try await ServeProcess(db: folder.appendingPathComponent("s.sqlite").path, environment: [:], in: folder, extra: ["--config", config])
        let (without, with) = try await withHTTPClient { http in
            (
                try await APIClient(http: http, base: server.url).call(.GET, "/v1/runs").status,
                try await APIClient(http: http, base: server.url, token: "from-the-file").call(.GET, "/v1/runs").status
            )
        }
        #expect(without == 401)
        #expect(with == 200)
        server.terminate()
        #expect(await server.waitForExit() == 0)
    }
}
