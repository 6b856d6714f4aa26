import Foundation
import SkaldCore
import Synchronization
import Testing
@testable import SkaldEngine
import SkaldTestSupport

/// Fan-out driven on every store: each item's call carries its item and its own key, an item out of stock undoes the
/// others each with its own key, later steps read every answer, and a process that dies in the middle of the items
/// loses none of them.
@Suite(.timeLimit(.minutes(5))) struct FanOutRunTests {
    static let order = """
        { "name": "order-items", "version": 1, "defaults": { "retry": { "maxAttempts": 2, "initialInterval": "1s", "jitter": "none" } },
          "steps": [
            { "name": "reserve", "forEach": "{{input.items}}", "maxConcurrency": 2,
              "request": { "method": "POST", "url": "http://127.0.0.1:1/reservations", "body": { "sku": "{{item.sku}}", "line": "{{index}}" } },
              "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/reservations/{{steps.reserve.response.body.id}}" } },
            { "name": "ship", "request": { "method": "POST", "url": "http://127.0.0.1:1/ship",
              "body": { "reservations": "{{steps.reserve.responses}}" } } } ] }
        """
    static let items: JSONValue = ["items": [["sku": "apple"], ["sku": "pear"], ["sku": "plum"]]]

    func engine(_ store: any SagaStore, _ executor: ScriptedExecutor) -> Engine {
        Engine(store: store, executor: executor, clock: ManualClock(), configuration: EngineConfiguration(environment: [:], jitterSample: { 1 }))
    }

    @Test(arguments: EngineStore.tested)
    func everyItemIsReservedAndTheNextStepReadsEveryAnswer(on kind: EngineStore) async throws {
        try await kind.with { store in
            let executor = ScriptedExecutor()
            let engine = engine(store, executor)
            let id = try await engine.startRun(try saga(Self.order), input: Self.items)
            let state = try await engine.drive(runID: id)
            #expect(state.status == .completed)
            #expect(state.steps.map(\.name) == ["reserve", "ship", "reserve[0]", "reserve[1]", "reserve[2]"])
            #expect(state.steps.map(\.status) == [.succeeded, .succeeded, .succeeded, .succeeded, .succeeded])
            let reservations = executor.calls.filter { $0.key.stepName.hasPrefix("reserve[") }
            #expect(Set(reservations.map(\.key.idempotencyKey)) == Set((0..<3).map { "\(id):reserve[\($0)]:forward" }))
            for call in reservations {
                let index = try #require(StepElement(name: call.key.stepName)?.index)
                #expect(call.context.element?.index == index)
                #expect(call.context.element?.item == Self.items["items"]?[index], "each call reads its own item")
            }
            let ship = try #require(executor.calls.last)
            #expect(ship.key.stepName == "ship")
            let answers = try #require(ship.context.itemResponses["reserve"]?.arrayValue)
            #expect(answers.map { $0["status"] } == [200, 200, 200])
            #expect(answers.map { $0["body"]?["id"] } == state.steps[2...].map { $0.response?.body["id"] }, "in the items' order")
            #expect(try await store.run(id: id)?.state == state, "items and their answers are stored and read back")
            let events = try await store.events(runID: id)
            #expect(events.contains { $0.kind == .itemsStarted && $0.step == "reserve" })
        }
    }

    @Test(arguments: EngineStore.tested)
    func oneItemOutOfStockUndoesTheOtherTwoEachWithItsOwnKey(on kind: EngineStore) async throws {
        try await kind.with { store in
            let outOfStock = AttemptOutcome.failed(
                AttemptFailure(kind: .status, reason: "HTTP 409", isRetryable: false, response: StepResponse(status: 409, body: ["error": "out of stock"])))
            let executor = ScriptedExecutor(["reserve[1]/forward": [outOfStock]])
            let engine = engine(store, executor)
            let id = try await engine.startRun(try saga(Self.order), input: Self.items)
            let state = try await engine.drive(runID: id)
            #expect(state.status == .compensated)
            #expect(state.failure?.step == "reserve[1]")
            #expect(state.steps.map(\.status) == [.compensated, .pending, .compensated, .failed, .compensated])
            let undone = executor.calls.filter { $0.key.phase == .compensate }
            #expect(Set(undone.map(\.key.idempotencyKey)) == ["\(id):reserve[0]:compensate", "\(id):reserve[2]:compensate"])
            for call in undone {
                let own = try #require(state.steps.first { $0.name == call.key.stepName }?.response)
                #expect(call.context.responses["reserve"] == own, "each undo reads its own item's answer")
            }
            #expect(!executor.calls.contains { $0.key.stepName == "ship" })
            #expect(try await store.run(id: id)?.state == state)
        }
    }

    @Test(arguments: EngineStore.tested)
    func aProcessThatDiesInTheMiddleOfTheItemsLosesNoneAndSendsNoneTwiceUnderANewKey(on kind: EngineStore) async throws {
        try await kind.with { store in
            // The first process stores the items and sends the first two, then dies before storing an answer.
            let dying = engine(FailingStore(store, failAt: .attemptFinished), ScriptedExecutor())
            let id = try await dying.startRun(try saga(Self.order), input: Self.items)
            _ = try? await dying.drive(runID: id)
            let interrupted = try #require(try await store.run(id: id))
            #expect(interrupted.state.steps.count == 5, "the items were stored before any was sent")
            let inFlight = interrupted.state.inFlightSteps.map { interrupted.state.steps[$0].name }
            #expect(!inFlight.isEmpty && inFlight.allSatisfy { $0.hasPrefix("reserve[") })

            let executor = ScriptedExecutor()
            let results = try await engine(store, executor).resumeUnfinished()
            #expect(results[id]?.status == .completed)
            let reservations = executor.calls.filter { $0.key.stepName.hasPrefix("reserve[") }
            #expect(reservations.count == 3, "each item once more at most: the interrupted ones again, the others for the first time")
            #expect(Set(reservations.map(\.key.stepName)) == ["reserve[0]", "reserve[1]", "reserve[2]"])
            #expect(reservations.allSatisfy { $0.key.number == 1 }, "an interrupted item is sent again as the same attempt, same key")
        }
    }

    /// A run stopped in the middle of its items is exported and imported into another store (of the same kind): its
    /// items travel with their states and answers, and it carries on there, sending only the items not yet done.
    @Test(arguments: EngineStore.tested)
    func aRunInTheMiddleOfItsItemsTravelsAndCarriesOn(on kind: EngineStore) async throws {
        let exported = Mutex<[String]>([])
        let id = try await kind.with { store in
            let dying = engine(FailingStore(store, failAt: .attemptFinished), ScriptedExecutor())
            let id = try await dying.startRun(try saga(Self.order), input: Self.items)
            _ = try? await dying.drive(runID: id)
            // Item 0 done by another process meanwhile: stored as the machine would have.
            _ = try await StoreTransfer.export(from: store, source: "old", at: Date()) { line in exported.withLock { $0.append(line) } }
            return id
        }
        let bytes = exported.withLock { $0 }.map { Array($0.utf8) }
        let checked = try StoreTransfer.check(lines: bytes)
        try await kind.with { store in
            _ = try await StoreTransfer.importChecked(checked, lines: bytes, into: store, at: Date())
            let imported = try #require(try await store.run(id: id))
            #expect(imported.state.steps.map(\.name) == ["reserve", "ship", "reserve[0]", "reserve[1]", "reserve[2]"])
            #expect(imported.state.steps[0].elements == 2..<5, "the step knows where its items are after the import")
            let executor = ScriptedExecutor()
            let results = try await engine(store, executor).resumeUnfinished()
            #expect(results[id]?.status == .completed)
            #expect(Set(executor.calls.filter { $0.key.stepName.hasPrefix("reserve[") }.map(\.key.stepName)) == ["reserve[0]", "reserve[1]", "reserve[2]"])
        }
    }

    /// An item's compensation that fails for good stops the run in compensation_failed, naming the item; a retry that
    /// names the step retries its failed items, and resolving an item by hand lets the compensation go on.
    @Test(arguments: EngineStore.tested)
    func aFailedUndoOfAnItemIsRetriedByItsStepOrResolvedByItsName(on kind: EngineStore) async throws {
        try await kind.with { store in
            let down = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 500", isRetryable: false))
            let shipRefused = AttemptOutcome.failed(AttemptFailure(kind: .status, reason: "HTTP 422", isRetryable: false))
            let executor = ScriptedExecutor(["ship/forward": [shipRefused], "reserve[2]/compensate": [down, down]])
            let engine = engine(store, executor)
            let id = try await engine.startRun(try saga(Self.order), input: Self.items)
            var state = try await engine.drive(runID: id)
            #expect(state.status == .compensationFailed)
            #expect(state.compensationFailure?.step == "reserve[2]")
            #expect(state.steps[0].status == .compensationFailed, "the step sums up its items")

            // Retrying the step retries its failed item, which fails again.
            _ = try await engine.retryCompensation(runID: id, step: "reserve", by: "ana", note: "inventory is back")
            state = try await engine.drive(runID: id)
            #expect(state.status == .compensationFailed && state.steps[4].compensationAttempts == 2)
            // The step itself cannot be resolved; its item can, and the compensation goes on.
            await #expect(throws: EngineError.self) { try await engine.resolve(runID: id, step: "reserve", note: "by hand", by: "ana") }
            _ = try await engine.resolve(runID: id, step: "reserve[2]", note: "released by hand", by: "ana")
            state = try await engine.drive(runID: id)
            #expect(state.status == .compensated)
            #expect(state.steps.map(\.status) == [.compensated, .failed, .compensated, .compensated, .compensationResolved])
            #expect(try await store.run(id: id)?.state == state)
        }
    }
}
