import Foundation
import SkaldCore
import SkaldDemo
import Testing
import SkaldTestSupport

/// A participant that takes the forward request and does not answer in time: Skald cannot know whether it was
/// applied, so it compensates it, naming it by its idempotency key; when the held request is processed later, the
/// participant (keeping the contract in the README) refuses it. Real participants over HTTP, a real SQLite file.
@Suite(.serialized, .timeLimit(.minutes(10))) struct UnknownOutcomeEndToEndTests {
    /// The example checkout with a short ship-order timeout, so the retries run out quickly.
    static let quickCheckout = checkoutText
        .replacingOccurrences(of: #""timeout": "1s""#, with: #""timeout": "300ms""#)
        .replacingOccurrences(of: #""name": "checkout""#, with: #""name": "quick-checkout""#)

    func start(_ h: Harness) async throws -> String {
        #expect(try await h.call(.post, "/v1/definitions", Self.quickCheckout).status == 201)
        let (status, run) = try await h.call(.post, "/v1/runs", #"{"saga": "quick-checkout", "input": \#(input())}"#)
        #expect(status == 201)
        return try #require(run["id"]?.stringValue)
    }

    @Test(arguments: DatabaseKind.tested)
    func aHeldRequestThatArrivesAfterItsCompensationIsRefusedAndNothingStaysApplied(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            let shipping = h.participants[.shipping]
            // Shipping takes each forward request and sits on it before applying it.
            await shipping.setFaults(Faults(stall: true))
            let id = try await start(h)
            let run = try await h.waitUntilFinished(id)
            #expect(run["status"] == "compensated")
            let ship = try #require(run["steps"]?.arrayValue?.first { $0["name"] == "ship-order" })
            #expect(ship["status"] == "compensated")
            #expect(ship["outcomeUnknown"] == true)
            #expect(ship["idempotencyKey"] == .string("\(id):ship-order:forward"))
            // The compensation came before the request was processed: nothing to undo, and it was remembered.
            #expect(await shipping.ledger.isEmpty)
            #expect(await shipping.heldCount >= 1, "the forward request is still held")

            await shipping.setFaults(Faults())
            await shipping.releaseHeld()
            try await waitFor("shipping to refuse the late request") { await shipping.refusedAfterUndo >= 1 }
            #expect(await shipping.ledger.isEmpty, "the late request was refused, not applied")
            #expect(await h.participants[.payments].ledger.map(\.action) == ["charge", "refund"])
            #expect(await h.participants[.inventory].ledger.map(\.action) == ["reserve", "release"])

            let history = try await h.call(.get, "/v1/runs/\(id)/events").json["events"]?.arrayValue ?? []
            let failed = try #require(history.first { $0["kind"] == "step_failed" })
            #expect(failed["data"]?["outcome"] == "unknown")
            #expect(failed["message"]?.stringValue?.contains("it may have been applied, so it is undone in case it was") == true)
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func anAppliedRequestWhoseAnswerCameTooLateIsUndone(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            let shipping = h.participants[.shipping]
            // Shipping applies the request, then holds the answer past the timeout.
            await shipping.setFaults(Faults(hold: true))
            let id = try await start(h)
            await shipping.waitForHeld()
            // Later requests (the retries and the compensation) are not held.
            await shipping.setFaults(Faults())
            let run = try await h.waitUntilFinished(id)
            #expect(run["status"] == "compensated")
            await shipping.releaseHeld()
            // The shipment was booked once (retries carried the same key) and cancelled once.
            #expect(await shipping.ledger.map(\.action) == ["ship", "cancel"])
            #expect(await shipping.applicationsPerKey.values.allSatisfy { $0 == 1 })
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aStepThatOptsOutIsLeftAsItIsAndTheRunSaysSo(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            let shipping = h.participants[.shipping]
            await shipping.setFaults(Faults(stall: true))
            let optedOut = Self.quickCheckout
                .replacingOccurrences(of: #""name": "ship-order","#, with: #""name": "ship-order", "compensateUnknown": false,"#)
                .replacingOccurrences(of: #""version": 1"#, with: #""version": 2"#)
            #expect(try await h.call(.post, "/v1/definitions", optedOut).status == 201)
            let (_, started) = try await h.call(.post, "/v1/runs", #"{"saga": "quick-checkout", "input": \#(input())}"#)
            let id = try #require(started["id"]?.stringValue)
            let run = try await h.waitUntilFinished(id)
            #expect(run["status"] == "compensated")
            let ship = try #require(run["steps"]?.arrayValue?.first { $0["name"] == "ship-order" })
            #expect(ship["status"] == "outcome_unknown")
            #expect(await shipping.requestCount >= 1)
            let history = try await h.call(.get, "/v1/runs/\(id)/events").json["events"]?.arrayValue ?? []
            #expect(history.last?["message"]?.stringValue?.contains("the outcome of ship-order is unknown and was left as it is") == true)
            await shipping.setFaults(Faults())
            await shipping.releaseHeld()
        }
    }

    @Test(arguments: DatabaseKind.tested)
    func aCompensationThatNeedsTheResponseThatNeverCameStopsForAPerson(kind: DatabaseKind) async throws {
        try await Harness.with(kind) { h in
            await h.participants[.shipping].setFaults(Faults(stall: true))
            // The older style: the shipment is cancelled by the id in the response.
            let byID = Self.quickCheckout.replacingOccurrences(
                of: "/shipments/by-key/{{steps.ship-order.idempotencyKey}}", with: "/shipments/{{steps.ship-order.response.body.id}}")
            let registered = try await h.call(.post, "/v1/definitions", byID)
            #expect(registered.status == 201)
            let warnings = registered.json["warnings"]?.arrayValue ?? []
            #expect(warnings.first?["path"] == "steps[2].compensation")
            let (_, started) = try await h.call(.post, "/v1/runs", #"{"saga": "quick-checkout", "input": \#(input())}"#)
            let id = try #require(started["id"]?.stringValue)
            let run = try await h.waitUntilFinished(id)
            #expect(run["status"] == "compensation_failed")
            #expect(run["compensationFailure"]?["step"] == "ship-order")
            #expect(run["compensationFailure"]?["reason"]?.stringValue?.contains("which never came") == true)
            // Nothing after it was undone: a person looks first.
            #expect(await h.participants[.payments].ledger.map(\.action) == ["charge"])
            await h.participants[.shipping].setFaults(Faults())
            await h.participants[.shipping].releaseHeld()
        }
    }
}

