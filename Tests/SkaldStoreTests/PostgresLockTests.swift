import Foundation
import Logging
import PostgresNIO
import SkaldCore
import SkaldEngine
@testable import SkaldPostgres
import Testing
import SkaldTestSupport

/// Lock order on PostgreSQL between a callback being stored and the run's own transitions.
@Suite struct PostgresLockTests {
    /// A callback being stored holds its row (updated, not yet committed) and then updates the run's row; a transition
    /// of that run holds the run's row. If the transition then waited for the callback's row (re-registering the
    /// step's token), the two would deadlock, and the participant's callback would be answered 500. The bench with two
    /// nodes found it. Here the callback's transaction is held open by hand: the transition must not wait for it.
    @Test(.needs(.postgres)) func aTransitionDoesNotWaitForACallbackBeingStored() async throws {
        let database = try await DatabaseKind.postgres.newDatabase()
        let store = try await PostgresStore.open(try PostgresLocation(url: database))
        defer { Task { await store.shutdown() } }
        let token = CallbackToken.new()
        let start = machine.start(runID: "R1", at: t0)
        _ = try await store.createRun(newRun("R1"), transition: start)
        var waiting = start.state
        waiting.steps[0].status = .waiting
        waiting.steps[0].attempts = 1
        waiting.steps[0].dueAt = t0.addingTimeInterval(600)
        waiting.steps[0].wait = StepWait(kind: .callback, since: t0, until: t0.addingTimeInterval(600), token: token, attempt: 1)
        try await store.recordTransition(runID: "R1", at: t0, transition: SagaMachine.Transition(state: waiting, events: [], changedSteps: [0]))

        let logger = Logger(label: "test")
        try await store.client.withConnection { connection in
            // As receiveCallback does: the callback's row locked and updated, in a transaction still open.
            _ = try await connection.query("BEGIN", logger: logger)
            _ = try await connection.query("SELECT 1 FROM callback WHERE token = \(token) FOR UPDATE", logger: logger)
            _ = try await connection.query("UPDATE callback SET heartbeat_at = 1800000100 WHERE token = \(token)", logger: logger)
            var beat = waiting
            beat.steps[0].wait?.heartbeatAt = t0.addingTimeInterval(100)
            let transition = Task {
                try await store.recordTransition(runID: "R1", at: t0, transition: SagaMachine.Transition(state: beat, events: [], changedSteps: [0]))
            }
            do {
                try await waitFor("the transition to be stored while the callback's transaction is open", limit: .seconds(30)) {
                    try await store.run(id: "R1")?.state.steps[0].wait?.heartbeatAt == t0.addingTimeInterval(100)
                }
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                _ = await transition.result
                throw error
            }
            _ = try await connection.query("ROLLBACK", logger: logger)
            try await transition.value
        }
    }
}
