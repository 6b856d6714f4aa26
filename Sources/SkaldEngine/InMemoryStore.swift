import Foundation
import SkaldCore

/// A store that keeps everything in memory: for tests and for previews that must not touch a database.
public actor InMemoryStore: SagaStore {
    private var runs: [String: StoredRun] = [:]
    private var history: [String: [StoredEvent]] = [:]
    private var attemptRecords: [String: [AttemptRecord]] = [:]
    private var registry: [String: StoredDefinition] = [:]
    private var sequence: Int64 = 0
    private var parked: [String: Date] = [:]
    private var callbackRows: [String: CallbackRow] = [:]

    public init() {}

    public func registerDefinition(_ definition: SagaDefinition, at: Date) -> Registration {
        let key = "\(definition.name)@\(definition.version)"
        if let existing = registry[key] {
            return existing.hash == definition.contentHash ? .alreadyRegistered : .conflict(existingHash: existing.hash)
        }
        registry[key] = StoredDefinition(
            hash: definition.contentHash, name: definition.name, version: definition.version, document: definition.document, createdAt: at)
        return .registered
    }

    public func definitions() -> [StoredDefinition] {
        registry.values.sorted { ($0.name, $0.version) < ($1.name, $1.version) }
    }

    public func definition(name: String, version: Int?) -> StoredDefinition? {
        registry.values.filter { $0.name == name && (version == nil || $0.version == version) }.max { $0.version < $1.version }
    }

    public func createRun(_ run: NewRun, transition: SagaMachine.Transition) throws -> CreatedRun {
        if let key = run.idempotencyKey, let existing = runs.values.first(where: { $0.idempotencyKey == key }) {
            return .existing(existing)
        }
        guard runs[run.id] == nil else { throw StoreError.duplicateRun(run.id) }
        runs[run.id] = StoredRun(
            id: run.id, sagaName: run.definition.name, sagaVersion: run.definition.version,
            definitionHash: run.definition.contentHash, definitionDocument: run.definition.document, input: run.input,
            createdAt: run.createdAt, updatedAt: run.createdAt, state: transition.state, idempotencyKey: run.idempotencyKey, trace: run.trace)
        append(transition.events, runID: run.id)
        return .created
    }

    public func recordTransition(runID: String, at: Date, transition: SagaMachine.Transition) throws {
        try apply(transition, runID: runID, at: at)
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
        parked[runID] = nil
        for (position, step) in transition.state.steps.enumerated() {
            guard let (token, attempt) = StepRow.callbackToken(of: step), callbackRows[token] == nil else { continue }
            callbackRows[token] = CallbackRow(token: token, runID: runID, position: position, attempt: attempt)
        }
        append(transition.events, runID: runID)
    }

    private func append(_ events: [RunEvent], runID: String) {
        for event in events {
            sequence += 1
            history[runID, default: []].append(StoredEvent(sequence: sequence, event: event))
        }
    }

    public func importRuns(events: [RunEvent], from next: @escaping @Sendable () throws -> ExportedRun?) throws -> ImportedRuns {
        // All or nothing: what was there is put back when any run fails.
        let saved = (runs, history, attemptRecords, sequence, callbackRows)
        do {
            var tally = ImportedRuns()
            while let exported = try next() {
                tally.add(try importRun(exported, events: events), of: exported.run)
            }
            return tally
        } catch {
            (runs, history, attemptRecords, sequence, callbackRows) = saved
            throw error
        }
    }

    private func importRun(_ exported: ExportedRun, events: [RunEvent]) throws -> ImportedRun {
        let run = exported.run
        guard runs[run.id] == nil else { return .alreadyPresent }
        if let key = run.idempotencyKey, let holder = runs.values.first(where: { $0.idempotencyKey == key }) {
            throw StoreError.idempotencyKeyTaken(key, by: holder.id, importing: run.id)
        }
        runs[run.id] = run
        // The token of a callback step's current attempt, so its participant can still call back.
        for (position, step) in run.state.steps.enumerated() {
            guard let (token, attempt) = StepRow.callbackToken(of: step), callbackRows[token] == nil else { continue }
            callbackRows[token] = CallbackRow(token: token, runID: run.id, position: position, attempt: attempt)
        }
        append(exported.events + events, runID: run.id)
        attemptRecords[run.id] = exported.attempts.map { attempt in
            var attempt = attempt
            attempt.key.runID = run.id
            return attempt
        }
        return .imported
    }

    public func runCounts() -> [RunStatus: Int] {
        runs.values.reduce(into: [:]) { $0[$1.state.status, default: 0] += 1 }
    }

    public func unfinishedRuns() -> [StoredRun] {
        runs.values.filter { !$0.state.status.isTerminal && parked[$0.id] == nil }.sorted { $0.id < $1.id }
    }

    public func park(runID: String, until: Date) throws -> Bool {
        guard let run = runs[runID] else { throw StoreError.unknownRun(runID) }
        let pending = callbackRows.values.contains { row in
            guard row.runID == runID, row.status != nil, row.position < run.state.steps.count else { return false }
            let step = run.state.steps[row.position]
            return step.attempts == row.attempt && (step.status == .running || step.status == .waiting)
        }
        if pending { return false }
        parked[runID] = until
        return true
    }

    public func receiveCallback(token: String, signal: CallbackSignal, at: Date) throws -> CallbackReceipt {
        guard var row = callbackRows[token] else { return .unknown }
        let step = runs[row.runID]?.state.steps[row.position]
        row.stepStatus = step?.status.rawValue
        row.stepAttempts = step?.attempts
        let (receipt, update) = try row.receive(signal, at: at)
        if let columns = update?.columns {
            row.status = columns.status ?? row.status
            row.output = columns.output ?? row.output
            row.error = columns.error ?? row.error
            row.receivedAt = columns.receivedAt ?? row.receivedAt
            row.heartbeatAt = columns.heartbeatAt ?? row.heartbeatAt
            callbackRows[token] = row
            if case .final? = update { parked[row.runID] = nil }
        }
        return receipt
    }

    public func waitingSteps() -> [WaitKind: Int] {
        var counts: [WaitKind: Int] = [:]
        for run in runs.values {
            for step in run.state.steps where step.status == .waiting {
                if let kind = step.wait?.kind { counts[kind, default: 0] += 1 }
            }
        }
        return counts
    }

    public func callbacks(runID: String) throws -> [StoredCallback] {
        try callbackRows.values.filter { $0.runID == runID && ($0.status != nil || $0.heartbeatAt != nil) }
            .sorted { ($0.position, $0.attempt) < ($1.position, $1.attempt) }.map { try $0.stored() }
    }

    public func unparkRuns(dueBy: Date, limit: Int) -> [String] {
        let due = parked.filter { $0.value <= dueBy && runs[$0.key].map { !$0.state.status.isTerminal } == true }
            .sorted { ($0.value, $0.key) < ($1.value, $1.key) }.prefix(limit).map(\.key)
        for id in due { parked[id] = nil }
        return due
    }

    public func run(id: String) -> StoredRun? { runs[id] }

    public func listRuns(_ query: RunQuery) -> RunPage {
        let matching = runs.values
            .filter { query.status == nil || $0.state.status == query.status }
            .filter { query.saga == nil || $0.sagaName == query.saga }
            .filter { run in query.cursor.map { query.waiting == nil ? run.id < $0 : run.id > $0 } ?? true }
            .filter { run in
                query.waiting.map { kind in run.state.status == .running && run.state.steps.contains { $0.status == .waiting && $0.wait?.kind == kind } }
                    ?? true
            }
            .filter { run in query.createdAfter.map { run.createdAt >= $0 } ?? true }
            .filter { run in query.createdBefore.map { run.createdAt < $0 } ?? true }
            .filter { query.idempotencyKey == nil || $0.idempotencyKey == query.idempotencyKey }
            .sorted { query.waiting == nil ? $0.id > $1.id : $0.id < $1.id }
        let page = Array(matching.prefix(query.limit)).map { run in
            RunSummary(
                id: run.id, sagaName: run.sagaName, sagaVersion: run.sagaVersion, status: run.state.status, createdAt: run.createdAt,
                updatedAt: run.updatedAt, failure: run.state.failure, compensationFailure: run.state.compensationFailure,
                stuck: run.state.stuck, idempotencyKey: run.idempotencyKey,
                currentStep: run.state.steps.first { $0.status == .running || $0.status == .waiting || $0.status == .compensating }?.name)
        }
        return RunPage(runs: page, nextCursor: matching.count > query.limit ? page.last?.id : nil)
    }

    public func events(runID: String, after: Int64) -> [StoredEvent] {
        (history[runID] ?? []).filter { $0.sequence > after }
    }

    public func attempts(runID: String) -> [AttemptRecord] { attemptRecords[runID] ?? [] }
}
