import Foundation
import SkaldCore

/// A page of a run's history: the events after a sequence number, and the run's status when they were read.
public struct RunEvents: Sendable {
    public var status: RunStatus
    public var events: [StoredEvent]
    /// The last event's sequence number (or the one asked after, when there is none): ask after it next.
    public var lastSequence: Int64
}

/// Who may wait in a long poll: asked just before a poll waits, and told when it stops waiting.
public struct LongPollAdmission: Sendable {
    public var enter: @Sendable () -> Bool
    public var leave: @Sendable () -> Void

    public init(enter: @escaping @Sendable () -> Bool = { true }, leave: @escaping @Sendable () -> Void = {}) {
        self.enter = enter
        self.leave = leave
    }
}

/// A long poll that would have waited, refused by its `LongPollAdmission`.
public struct LongPollRefused: Error, Sendable {}

/// The engine's operations as the API (or any other front end) asks for them: by a saga's name, a run's id, a wait.
/// What HTTP adds (reading bodies and query parameters, status codes) stays in the router.
extension Engine {
    /// How often a long poll for a run another node drives reads the database again even when no node signalled
    /// new events for it (the driving node's `NOTIFY` wakes it at once): a safety net, should a signal be lost.
    static let sharedPollInterval: Duration = .seconds(5)

    /// Starts a run of the registered saga `name` (its latest version, or `version`).
    /// - Throws: `EngineError` `.notFound` naming the registered sagas, `.definitionUnrunnable` when the stored
    ///   definition no longer validates, `.conflict` when `idempotencyKey` was first used with another saga, version
    ///   or input; `InputError` when the input does not fit.
    public func start(
        saga name: String, version: Int? = nil, input: JSONValue, idempotencyKey: String? = nil, trace: RunTrace? = nil
    ) async throws -> StartedRun {
        guard let stored = try await store.definition(name: name, version: version) else {
            let known = Set(try await store.definitions().map(\.name)).sorted()
            throw EngineError(
                code: .notFound,
                message: "no saga \"\(name)\"\(version.map { " version \($0)" } ?? "") is registered\(known.isEmpty ? "" : " (registered: \(known.joined(separator: ", ")))"); register it with POST /v1/definitions or skald define FILE")
        }
        let definition: SagaDefinition
        do {
            definition = try self.definition(stored)
        } catch {
            throw EngineError(
                code: .definitionUnrunnable,
                message: "\(name) version \(stored.version) is registered but no longer validates with this version of Skald (\(error.problems.map(\.description).joined(separator: "; "))); register a corrected definition under a new version")
        }
        return try await start(definition, input: input, idempotencyKey: idempotencyKey, trace: trace, sameVersion: version != nil)
    }

    /// Tries again what waits for a person: the failed compensation of `step` (or every failed one) of a run in
    /// compensation_failed, or the failed steps of a stuck run, chosen on the state the action is applied to.
    /// - Throws: `EngineError` `.notFound`, or `.conflict` when the run is in neither state.
    public func retry(runID: String, step: String? = nil, note: String = "", by who: String = "") async throws -> RunState {
        try await operate(runID, .retry(step: step, by: who, note: note))
    }

    /// The run's events after `after`; when there are none yet and the run is unfinished, waits up to `wait` for one.
    /// A run this node drives wakes the wait as its events are stored; one another node drives (on a shared
    /// database) wakes it when that node signals the events it stored (`NodeWakeUp.events`), and is read again
    /// every `sharedPollInterval` in any case.
    /// - Parameter admission: asked just before waiting (only then): false refuses the wait with
    ///   `LongPollRefused`; `leave` is called after a wait it admitted.
    /// - Throws: `EngineError` `.notFound`, or `LongPollRefused`.
    public func events(
        runID: String, after: Int64, wait: Duration, admission: LongPollAdmission = LongPollAdmission()
    ) async throws -> RunEvents {
        let version = notifier.version(of: runID)
        guard let run = try await store.run(id: runID) else { throw EngineError.notFound(runID) }
        var events = try await store.events(runID: runID, after: after)
        if events.isEmpty, wait > .zero, !run.state.status.isTerminal {
            guard admission.enter() else { throw LongPollRefused() }
            defer { admission.leave() }
            if sharesRuns && !drivesHere(runID) {
                // Another node drives the run (or none does yet): its events arrive through the database, and the
                // node that stores them signals it.
                let deadline = clock.now().addingTimeInterval(wait.seconds)
                var version = version
                while events.isEmpty, case let left = Duration(secondsValue: deadline.timeIntervalSince(clock.now())), left > .zero {
                    await notifier.wait(for: runID, after: version, timeout: min(Self.sharedPollInterval, left))
                    version = notifier.version(of: runID)
                    events = try await store.events(runID: runID, after: after)
                }
            } else {
                await notifier.wait(for: runID, after: version, timeout: wait)
                events = try await store.events(runID: runID, after: after)
            }
        }
        let status = try await store.run(id: runID)?.state.status ?? run.state.status
        return RunEvents(status: status, events: events, lastSequence: events.last?.sequence ?? after)
    }

    /// The saga a stored run runs, parsed once per definition (nil when it no longer validates).
    public func saga(of run: StoredRun) -> SagaDefinition? {
        try? definition(
            StoredDefinition(hash: run.definitionHash, name: run.sagaName, version: run.sagaVersion, document: run.definitionDocument, createdAt: run.createdAt))
    }
}
