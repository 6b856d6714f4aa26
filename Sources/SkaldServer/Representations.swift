import Foundation
import SkaldAPI
import SkaldCore
import SkaldEngine
import Synchronization

/// The engine's values as the API's shapes (`SkaldAPI`), in one place.
enum Representation {
    static func failure(_ failure: RunFailure?) -> FailureView? {
        failure.map { FailureView(step: $0.step, reason: $0.reason) }
    }

    static func summary(_ run: RunSummary) -> RunSummaryView {
        RunSummaryView(
            id: run.id, saga: run.sagaName, version: run.sagaVersion, status: run.status.rawValue, createdAt: run.createdAt,
            updatedAt: run.updatedAt, failure: failure(run.failure), compensationFailure: failure(run.compensationFailure),
            stuck: failure(run.stuck), idempotencyKey: run.idempotencyKey, currentStep: run.currentStep)
    }

    /// The saga's shape, for drawing it: its steps wave by wave (as `skald plan` computes them) and each step's
    /// dependencies, whether it is the pivot and whether it declares a compensation.
    static func graph(_ saga: SagaDefinition) -> GraphView {
        let plan = Planner.plan(saga, failAt: [])
        return GraphView(
            waves: plan.waves,
            steps: zip(plan.steps, saga.steps).map { planned, step in
                GraphStepView(
                    name: planned.name, dependsOn: planned.dependsOn, pivot: planned.isPivot, compensation: step.isUndoable,
                    forEach: planned.forEach, when: planned.when)
            })
    }

    /// - Parameter input: the run's input as it may be shown (sensitive fields masked).
    /// - Parameter waits: the steps a participant holds back now (known to the node driving the run).
    static func run(
        _ run: StoredRun, input: JSONValue, attempts: [AttemptRecord], graph: GraphView?, waits: [String: ParticipantWait] = [:],
        output: Result<JSONValue, TemplateRenderError>? = nil
    ) -> RunView {
        var steps = run.state.steps.enumerated().map { index, step in
            StepView(
                name: step.name, status: step.status.rawValue, attempts: step.attempts, compensationAttempts: step.compensationAttempts,
                nextAttemptAt: step.dueAt, response: step.response.map { ResponseView(status: $0.status, body: $0.body) },
                lastError: step.lastError, outcomeUnknown: step.outcomeUnknown, resolution: step.resolution.map(resolution),
                idempotencyKey: IdempotencyKey.of(runID: run.id, step: step.name, phase: .forward), waiting: waits[step.name].map(wait),
                wait: step.wait.map {
                    StepWaitView(
                        kind: $0.kind.rawValue, since: $0.since, until: $0.until, prompt: $0.prompt, output: $0.output,
                        child: $0.kind == .child ? $0.token : nil)
                },
                attemptLog: attempts.filter { $0.key.step == index }.map(attempt))
        }
        // The items of a forEach step are shown under it, with counts, rather than as steps of the saga.
        for (index, step) in run.state.steps.enumerated() {
            guard let range = step.elements else { continue }
            let counts = Dictionary(grouping: run.state.steps[range], by: \.status.rawValue).mapValues(\.count)
            steps[index].items = ItemsView(count: range.count, byStatus: counts, steps: Array(steps[range]))
        }
        steps.removeAll { StepElement(name: $0.name) != nil }
        var view = RunView(
            id: run.id, saga: run.sagaName, version: run.sagaVersion, definitionHash: run.definitionHash, status: run.state.status.rawValue,
            input: input, createdAt: run.createdAt, updatedAt: run.updatedAt, failure: failure(run.state.failure),
            compensationFailure: failure(run.state.compensationFailure), stuck: failure(run.state.stuck), deadlineAt: run.state.deadlineAt,
            idempotencyKey: run.idempotencyKey,
            currentStep: run.state.steps.first { $0.status == .running || $0.status == .waiting || $0.status == .compensating }?.name,
            traceId: run.trace?.traceID, traceparent: run.trace?.parent, steps: steps, graph: graph)
        switch output {
        case .success(let value)?: view.output = value
        case .failure(let error)?: view.outputError = error.message
        case nil: break
        }
        return view
    }

    /// Who resolved a step (or its compensation) by hand, when, and what they did.
    static func resolution(_ resolution: StepResolution) -> ResolutionView {
        ResolutionView(by: resolution.by, note: resolution.note, at: resolution.at)
    }

    static func wait(_ wait: ParticipantWait) -> WaitView {
        WaitView(participant: wait.participant, reason: wait.reason.rawValue, until: wait.until)
    }

    static func participant(_ status: ParticipantStatus) -> ParticipantView {
        func rate(_ value: Double?) -> Double? { value.map { ($0 * 10).rounded() / 10 } }
        return ParticipantView(
            name: status.id.name, saga: status.id.saga, circuit: status.state?.rawValue, failureRate: rate(status.failureRate),
            slowCallRate: rate(status.slowCallRate), callsInWindow: status.callsInWindow, inFlight: status.inFlight, queued: status.queued,
            nextProbeAt: status.nextProbeAt, pausedUntil: status.pausedUntil, timesOpened: status.timesOpened, sent: status.sent,
            failed: status.failed, heldBack: status.heldBack, settings: settings(status.settings), summary: status.settings.summary)
    }

    static func settings(_ settings: ParticipantSettings) -> ParticipantSettingsView {
        let breaker = settings.circuitBreaker.map { breaker in
            var view = CircuitBreakerView(
                failureRate: breaker.failureRate, minimumCalls: breaker.minimumCalls, openFor: DurationText.format(breaker.openFor),
                maxOpenFor: DurationText.format(breaker.maxOpenFor), backoffCoefficient: breaker.backoffCoefficient, probes: breaker.probes,
                windowCalls: nil, windowTime: nil, slowCall: breaker.slowCall.map(DurationText.format),
                slowCallRate: breaker.slowCall == nil ? nil : breaker.slowCallRate)
            switch breaker.window {
            case .calls(let n): view.windowCalls = n
            case .time(let span): view.windowTime = DurationText.format(span)
            }
            return view
        }
        return ParticipantSettingsView(
            baseUrl: settings.baseURL, circuitBreaker: breaker, bulkhead: settings.maxInFlight.map(BulkheadView.init(maxInFlight:)),
            rateLimit: settings.rateLimit.map { RateLimitView(perSecond: $0.perSecond, burst: $0.burst) })
    }

    static func attempt(_ record: AttemptRecord) -> AttemptView {
        AttemptView(
            phase: record.key.phase.rawValue, number: record.key.number, idempotencyKey: record.key.idempotencyKey,
            startedAt: record.startedAt, sends: record.sends, finishedAt: record.finishedAt,
            outcome: record.succeeded.map { $0 ? "succeeded" : "failed" } ?? "in_flight", httpStatus: record.httpStatus,
            error: record.error, durationMs: record.durationMs.map { Int($0) }, node: record.node)
    }

    static func event(_ stored: StoredEvent) -> EventView {
        let event = stored.event
        return EventView(
            sequence: stored.sequence, at: event.at, kind: event.kind.rawValue, step: event.step, phase: event.phase?.rawValue,
            attempt: event.attempt, message: event.message, data: event.data)
    }

    static func definition(
        _ definition: StoredDefinition, full: Bool, graph: GraphView? = nil, warnings: [DefinitionProblem]? = nil
    ) -> DefinitionView {
        DefinitionView(
            name: definition.name, version: definition.version, hash: definition.hash, registeredAt: definition.createdAt,
            description: definition.document["description"]?.stringValue,
            steps: (definition.document["steps"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue },
            definition: full ? maskingSecretHeaders(definition.document) : JSONValue?.none, graph: graph, warnings: warnings.map(problems))
    }

    /// The definition as shown: the values of credential headers (`Authorization`, `Proxy-Authorization`,
    /// `Cookie`) and of those a call lists in `secretHeaders` are replaced by `***`.
    static func maskingSecretHeaders(_ document: JSONValue) -> JSONValue {
        guard case .object(var top) = document, case .array(let steps)? = top["steps"] else { return document }
        top["steps"] = .array(steps.map { step in
            guard case .object(var members) = step else { return step }
            for key in ["request", "compensation"] {
                guard case .object(var call)? = members[key], case .object(var headers)? = call["headers"] else { continue }
                let marked = Set((call["secretHeaders"]?.arrayValue ?? []).compactMap { $0.stringValue?.lowercased() })
                for name in headers.keys where CallDefinition.alwaysSecretHeaders.contains(name.lowercased()) || marked.contains(name.lowercased()) {
                    headers[name] = "***"
                }
                call["headers"] = .object(headers)
                members[key] = .object(call)
            }
            return .object(members)
        })
        return .object(top)
    }

    static func problems(_ problems: [DefinitionProblem]) -> [ProblemView] {
        problems.map { problem in
            ProblemView(path: problem.path?.description, line: problem.location?.line, column: problem.location?.column, message: problem.message)
        }
    }

    /// Problems as an error's `details` carry them.
    static func details(_ problems: [DefinitionProblem]) -> JSONValue {
        .array(self.problems(problems).map { $0.json() })
    }
}

/// Saga graphs by definition (content hash), so a run's view does not plan its saga again each time it is shown.
final class GraphCache: Sendable {
    private let graphs = Mutex<[String: GraphView]>([:])
    /// Past this many definitions, one is forgotten for each new one.
    static let limit = 512

    func graph(_ saga: SagaDefinition) -> GraphView {
        let hash = saga.contentHash
        if let graph = graphs.withLock({ $0[hash] }) { return graph }
        let graph = Representation.graph(saga)
        graphs.withLock { graphs in
            if graphs.count >= Self.limit, let victim = graphs.keys.randomElement() { graphs.removeValue(forKey: victim) }
            graphs[hash] = graph
        }
        return graph
    }
}
