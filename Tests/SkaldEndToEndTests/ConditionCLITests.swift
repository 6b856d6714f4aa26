import Foundation
import Hummingbird
import NIOCore
import SkaldCore
import SkaldDemo
import Synchronization
import Testing
import SkaldTestSupport

/// Steps that decide, with the real binary and a real bank on 127.0.0.1: a KYC check that answers 200 with a
/// rejection turns the run back, and a small deposit skips the manual review.
@Suite(.timeLimit(.minutes(10))) struct ConditionCLITests {
    static let saga = """
        { "name": "open-account", "version": 1, "defaults": { "timeout": "20s", "retry": { "maxAttempts": 2, "initialInterval": "100ms" } },
          "steps": [
            { "name": "reserve", "request": { "method": "POST", "url": "{{env.BANK_URL}}/reserve", "body": { "customer": "{{input.customer}}" } },
              "compensation": { "method": "POST", "url": "{{env.BANK_URL}}/release", "body": { "customer": "{{input.customer}}" } } },
            { "name": "kyc", "request": { "method": "POST", "url": "{{env.BANK_URL}}/kyc", "body": { "customer": "{{input.customer}}" } },
              "failWhen": { "value": "{{steps.kyc.response.body.decision}}", "equals": "rejected" } },
            { "name": "review", "when": { "value": "{{input.deposit}}", "greaterThan": 10000 },
              "request": { "method": "POST", "url": "{{env.BANK_URL}}/review", "body": { "customer": "{{input.customer}}" } } },
            { "name": "open", "request": { "method": "POST", "url": "{{env.BANK_URL}}/open",
              "body": { "customer": "{{input.customer}}", "reviewer": "{{steps.review.response.body.by ?? \\"nobody\\"}}" } } } ],
          "output": { "customer": "{{input.customer}}", "reviewer": "{{steps.review.response.body.by ?? null}}" } }
        """

    /// What the bank was asked, in order: "reserve ana", "open ana by nobody", …
    final class Bank: Sendable {
        let ledger = Mutex<[String]>([])

        func router() -> Router<BasicRequestContext> {
            let router = Router()
            for action in ["reserve", "release", "kyc", "review", "open"] {
                router.post("/\(action)") { request, _ in
                    let body = try JSONParser.parse(String(buffer: try await request.body.collect(upTo: 1 << 16)))
                    let customer = body["customer"]?.stringValue ?? "?"
                    let entry = action == "open" ? "open \(customer) by \(body["reviewer"]?.stringValue ?? "?")" : "\(action) \(customer)"
                    self.ledger.withLock { $0.append(entry) }
                    let answer: JSONValue = action == "kyc"
                        ? ["decision": customer == "mallory" ? "rejected" : "approved"] : action == "review" ? ["by": "ana"] : ["ok": true]
                    return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: answer.jsonText)))
                }
            }
            return router
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aRejectionIn200TurnsTheRunBackAndASmallDepositSkipsTheReview(kind: DatabaseKind) async throws {
        let bank = Bank()
        try await LoopbackServers.withRunning([bank.router()]) { ports in
            let folder = try temporaryFolder()
            let file = folder.appendingPathComponent("open-account.json")
            try Self.saga.write(to: file, atomically: true, encoding: .utf8)
            let environment = ["BANK_URL": "http://127.0.0.1:\(ports[0])"]
            let db = try await kind.newDatabase()

            let rejected = try await SkaldProcess.run(
                ["run", file.path, "--input", #"{"customer": "mallory", "deposit": 500}"#, "--db", db], environment: environment, in: folder)
            #expect(rejected.status == 3, "\(rejected.stdout)\(rejected.stderr)")
            #expect(rejected.stdout.contains(#"refused by failWhen: steps.kyc.response.body.decision equals "rejected""#), "\(rejected.stdout)")
            #expect(bank.ledger.withLock { $0 } == ["reserve mallory", "kyc mallory", "release mallory"])

            bank.ledger.withLock { $0 = [] }
            let small = try await SkaldProcess.run(
                ["run", file.path, "--input", #"{"customer": "bo", "deposit": 500}"#, "--db", db], environment: environment, in: folder)
            #expect(small.status == 0, "\(small.stdout)\(small.stderr)")
            #expect(small.stdout.contains("review skipped: its condition is false (input.deposit > 10000)"), "\(small.stdout)")
            #expect(bank.ledger.withLock { $0 } == ["reserve bo", "kyc bo", "open bo by nobody"])
            #expect(small.stdout.contains("completed in") && small.stdout.contains("3 steps succeeded; skipped by their condition: review"))
            #expect(small.stdout.contains(#"output: {"customer":"bo","reviewer":null}"#), "\(small.stdout)")

            bank.ledger.withLock { $0 = [] }
            let large = try await SkaldProcess.run(
                ["run", file.path, "--input", #"{"customer": "cy", "deposit": 50000}"#, "--db", db], environment: environment, in: folder)
            #expect(large.status == 0, "\(large.stdout)\(large.stderr)")
            #expect(bank.ledger.withLock { $0 } == ["reserve cy", "kyc cy", "review cy", "open cy by ana"])
            #expect(large.stdout.contains(#"output: {"customer":"cy","reviewer":"ana"}"#), "\(large.stdout)")

            let plan = try await SkaldProcess.run(["plan", file.path], in: folder)
            #expect(plan.stdout.contains("runs only when input.deposit > 10000; otherwise skipped"), "\(plan.stdout)")
            #expect(plan.stdout.contains(#"a 2xx answer is a refusal when steps.kyc.response.body.decision equals "rejected""#))
            // Scripted: the KYC refuses and the review is skipped.
            let scripted = try await SkaldProcess.run(["plan", file.path, "--when", "kyc=refused", "--when", "review=skipped"], in: folder)
            #expect(scripted.status == 0, "\(scripted.stderr)")
            #expect(scripted.stdout.contains("With kyc=refused, review=skipped"), "\(scripted.stdout)")
            #expect(scripted.stdout.contains("the run turns back at kyc; never sent: review, open") || scripted.stdout.contains("the run turns back at kyc; never sent: open"), "\(scripted.stdout)")
            #expect(scripted.stdout.contains("undo 1. reserve") && scripted.stdout.contains("outcome: compensated"), "\(scripted.stdout)")
            let json = try JSONParser.parse(try await SkaldProcess.run(["plan", file.path, "--json", "--when", "review=skipped"], in: folder).stdout)
            #expect(json["scripted"]?["skipped"] == ["review"] && json["scripted"]?["outcome"] == "completed")
            let wrong = try await SkaldProcess.run(["plan", file.path, "--when", "open=refused"], in: folder)
            #expect(wrong.status == 2 && wrong.stderr.contains(#"open has no "failWhen""#), "\(wrong.stderr)")
        }
    }
}
