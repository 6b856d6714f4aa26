import Foundation
import SkaldCore

/// A store that keeps everything in memory: for tests and for previews that must not touch a database.
public actor InMemoryStore: SagaStore {
    private var runs: [String: StoredRun] = [:]
    private var order: [String] = []
    private var history: [String: [RunEvent]] = [:]
    private var attemptRecords: [String: [AttemptRecord]] = [:]

    public init() {}

    public func createRun(_ run: NewRun, transition: SagaMachine.Transition) throws {
        guard runs[run.id] == nil else { throw StoreError.duplicateRun(run.id) }
        runs[run.id] = StoredRun(
            id: run.id, sagaName: run.definition.name, sagaVersion: run.definition.version,
            definitionHash: run.definition.contentHash, definitionDocument: run.definition.document, input: run.input,
            createdAt: run.createdAt, updatedAt: run.createdAt, state: transition.state)
        order.append(run.id)
        history[run.id] = transition.events
    }

    public func recordAttemptStarted(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) throws {
        try apply(transition, runID: attempt.runID, at: at)
        attemptRecords[attempt.runID, default: []].append(AttemptRecord(key: attempt, startedAt: at))
    }

    public func recordAttemptResent(_ attempt: AttemptKey, at: Date, transition: SagaMachine.Transition) throws {
        try apply(transition, runID: attempt.runID, at: at)
        if let index = attemptRecords[attempt.runID]?.lastIndex(where: { $0.key == attempt }) {
            attemptRecords[attempt.runID]![index].sends += 1
        }
    }

    public func recordAttemptFinished(_ result: AttemptResult, transition: SagaMachine.Transition) throws {
        try apply(transition, runID: result.attempt.runID, at: result.finishedAt)
        if let index = attemptRecords[result.attempt.runID]?.lastIndex(where: { $0.key == result.attempt }) {
            attemptRecords[result.attempt.runID]![index].finish(with: result)
        }
    }

    private func apply(_ transition: SagaMachine.Transition, runID: String, at: Date) throws {
        guard runs[runID] != nil else { throw StoreError.unknownRun(runID) }
        runs[runID]!.state = transition.state
        runs[runID]!.updatedAt = at
        history[runID, default: []].append(contentsOf: transition.events)
    }

    public func unfinishedRuns() -> [StoredRun] {
        order.compactMap { runs[$0] }.filter { !$0.state.status.isTerminal }
    }

    public func run(id: String) -> StoredRun? { runs[id] }

    public func events(runID: String) -> [RunEvent] { history[runID] ?? [] }

    public func attempts(runID: String) -> [AttemptRecord] { attemptRecords[runID] ?? [] }
}

public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(message: String) {
        self.message = message
    }

    public static func duplicateRun(_ id: String) -> StoreError { StoreError(message: "a run with id \(id) already exists") }
    public static func unknownRun(_ id: String) -> StoreError { StoreError(message: "no run with id \(id) is stored") }

    public var description: String { message }
}
