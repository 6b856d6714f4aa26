import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

@Suite(.timeLimit(.minutes(10))) struct ValidateCommandTests {
    var sagaFiles: [String] {
        let folder = packageRoot.appendingPathComponent("Sagas")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().map { folder.appendingPathComponent($0).path }
    }

    @Test func everyExampleSagaIsValid() async throws {
        #expect(!sagaFiles.isEmpty)
        let result = try await SkaldProcess.run(["validate"] + sagaFiles, in: try temporaryFolder())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.components(separatedBy: ": ok").count - 1 == sagaFiles.count)
    }

    @Test func aCompensationThatNeedsItsOwnResponseIsValidWithAWarning() async throws {
        let folder = try temporaryFolder()
        let file = folder.appendingPathComponent("byid.json")
        try Data(#"""
            {"name": "x", "version": 1, "steps": [{"name": "ship", "request": {"method": "POST", "url": "http://h/s"},
              "compensation": {"method": "DELETE", "url": "http://h/s/{{steps.ship.response.body.id}}"}}]}
            """#.utf8).write(to: file)
        let result = try await SkaldProcess.run(["validate", file.path], in: folder)
        #expect(result.status == 0, "a warning is not a problem: \(result.stderr)")
        #expect(result.stdout.contains(": ok"))
        #expect(result.stderr.contains("\(file.path): warning: steps[0].compensation: the compensation reads this step's own response"))
        #expect(result.stderr.contains("{{steps.ship.idempotencyKey}}"))
        let optedOut = try String(contentsOf: file, encoding: .utf8).replacingOccurrences(of: #""name": "ship","#, with: #""name": "ship", "compensateUnknown": false,"#)
        try Data(optedOut.utf8).write(to: file)
        let quiet = try await SkaldProcess.run(["validate", file.path], in: folder)
        #expect(quiet.status == 0)
        #expect(!quiet.stderr.contains("warning"), "\(quiet.stderr)")
    }

    @Test(.tags(.python), .needs(.python)) func everyExampleSagaMatchesThePublishedJSONSchema() async throws {
        let schema = packageRoot.appendingPathComponent("Sagas/schema/saga.schema.json").path
        // A definition the schema must reject, so that this test can fail.
        let folder = try temporaryFolder()
        let bad = folder.appendingPathComponent("bad.json")
        try Data(#"{"name": "x", "version": 1, "steps": [{"name": "a", "request": {"method": "FETCH", "url": "http://h"}, "retries": 1}]}"#.utf8)
            .write(to: bad)
        let script = """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            validator = jsonschema.Draft202012Validator(schema)
            bad = sys.argv[2]
            for path in sys.argv[3:]:
                errors = list(validator.iter_errors(json.load(open(path))))
                if errors: print(path, "INVALID", errors[0].message); sys.exit(1)
                print(path, "ok")
            if not list(validator.iter_errors(json.load(open(bad)))): print("schema accepted a bad definition"); sys.exit(1)
            print("bad rejected")
            """
        let python = try ChildProcess(
            executable: "/usr/bin/env", ["python3", "-c", script, schema, bad.path] + sagaFiles,
            environment: ProcessInfo.processInfo.environment, directory: packageRoot, outputIn: folder)
        let exit = await python.waitForExit()
        let text = python.stdout + python.stderr
        #expect(exit.status == 0 && !exit.signalled, "\(text)")
        #expect(text.contains("bad rejected"))

        // skald validate rejects the same file.
        let result = try await SkaldProcess.run(["validate", bad.path], in: folder)
        #expect(result.status == 1)
    }

    @Test func theParticipantsSchemaAcceptsTheExampleAndTheSagaSchemaASagaWithParticipants() async throws {
        let folder = try temporaryFolder()
        let withParticipants = folder.appendingPathComponent("gated.json")
        try Data(ParticipantCLITests.saga.utf8).write(to: withParticipants)
        let badParticipants = folder.appendingPathComponent("bad-participants.json")
        try Data(#"{"participants": {"payments": {"bulkhead": {"maxInFlight": 0}}}}"#.utf8).write(to: badParticipants)
        let script = """
            import json, sys, jsonschema
            def check(schema_path, good, bad):
                schema = json.load(open(schema_path))
                jsonschema.Draft202012Validator.check_schema(schema)
                validator = jsonschema.Draft202012Validator(schema)
                errors = list(validator.iter_errors(json.load(open(good))))
                if errors: print(good, "INVALID", errors[0].message); sys.exit(1)
                if bad and not list(validator.iter_errors(json.load(open(bad)))): print("accepted", bad); sys.exit(1)
                print(good, "ok")
            check(sys.argv[1], sys.argv[2], None)
            check(sys.argv[3], sys.argv[4], sys.argv[5])
            """
        let python = try ChildProcess(
            executable: "/usr/bin/env",
            [
                "python3", "-c", script, "Sagas/schema/saga.schema.json", withParticipants.path, "Sagas/schema/participants.schema.json",
                "Sagas/participants/demo.json", badParticipants.path,
            ],
            environment: ProcessInfo.processInfo.environment, directory: packageRoot, outputIn: folder)
        let exit = await python.waitForExit()
        #expect(exit.status == 0 && !exit.signalled, "\(python.stdout)\(python.stderr)")
        // And Skald reads the example the way the schema does.
        let bytes = try Data(contentsOf: packageRoot.appendingPathComponent("Sagas/participants/demo.json"))
        let parsed = try DefinitionParser.parseParticipants(Array(bytes), file: "demo.json")
        #expect(parsed.keys.sorted() == ["payments", "shipping"])
    }

    @Test func printsEveryProblemWithFileLineColumnAndPath() async throws {
        let folder = try temporaryFolder()
        let file = folder.appendingPathComponent("broken.json")
        try Data("""
            {
              "name": "broken",
              "version": 1,
              "steps": [
                { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/{{steps.b.response.body.id}}" } },
                { "name": "b", "request": { "method": "PUSH", "url": "http://127.0.0.1:1/b", "timeout": "soon" } }
              ]
            }
            """.utf8).write(to: file)
        let malformed = folder.appendingPathComponent("malformed.json")
        try Data("{\n  \"name\": \"x\",\n  \"version\": 1,,\n}".utf8).write(to: malformed)
        let good = packageRoot.appendingPathComponent("Sagas/checkout.json").path
        let result = try await SkaldProcess.run(["validate", good, file.path, malformed.path], in: folder)
        #expect(result.status == 1)
        #expect(result.stdout.contains("checkout.json: ok"))
        #expect(result.stderr.contains("\(file.path):5:58: steps[0].request.url: {{steps.b.response.body.id}} refers to step \"b\", which runs after this one"))
        #expect(result.stderr.contains("\(file.path):6:43: steps[1].request.method: \"PUSH\" is not an HTTP method"))
        #expect(result.stderr.contains("\(file.path):6:93: steps[1].request.timeout: \"soon\" is not a duration"))
        #expect(result.stderr.contains("\(malformed.path):3:16: malformed JSON"))
        #expect(result.stderr.contains("broken.json: 3 problems"))
    }

    @Test func theEmbeddedDemoSagaIsTheOneInTheRepository() throws {
        let file = try String(contentsOf: packageRoot.appendingPathComponent("Sagas/checkout.json"), encoding: .utf8)
        #expect(DemoSagas.checkout == file.trimmingCharacters(in: .newlines))
    }
}
