import Foundation
import SkaldCore
import SkaldEngine

/// The API's JSON shapes, in one place.
enum Representation {
    static func timestamp(_ date: Date) -> JSONValue {
        .string(date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
    }

    static func links(_ runID: String) -> JSONValue {
        [
            "self": .string("/v1/runs/\(runID)"), "events": .string("/v1/runs/\(runID)/events"),
            "cancel": .string("/v1/runs/\(runID)/cancel"), "retry": .string("/v1/runs/\(runID)/retry"),
        ]
    }

    static func failure(_ failure: RunFailure?) -> JSONValue {
        guard let failure else { return .null }
        return ["step": failure.step.map(JSONValue.string) ?? .null, "reason": .string(failure.reason)]
    }

    static func summary(_ run: RunSummary) -> JSONValue {
        [
            "id": .string(run.id), "saga": .string(run.sagaName), "version": .int(Int64(run.sagaVersion)),
            "status": .string(run.status.rawValue), "createdAt": timestamp(run.createdAt), "updatedAt": timestamp(run.updatedAt),
            "failure": failure(run.failure), "compensationFailure": failure(run.compensationFailure), "stuck": failure(run.stuck),
            "idempotencyKey": run.idempotencyKey.map(JSONValue.string) ?? .null, "links": links(run.id),
            "currentStep": run.currentStep.map(JSONValue.string) ?? .null,
        ]
    }

    /// The saga's shape, for drawing it: its steps wave by wave (as `skald plan` computes them) and each step's
    /// dependencies, whether it is the pivot and whether it declares a compensation.
    static func graph(_ saga: SagaDefinition) -> JSONValue {
        let plan = Planner.plan(saga, failAt: [])
        return [
            "waves": .array(plan.waves.map { .array($0.map(JSONValue.string)) }),
            "steps": .array(
                zip(plan.steps, saga.steps).map { planned, step in
                    [
                        "name": .string(planned.name), "dependsOn": .array(planned.dependsOn.map(JSONValue.string)),
                        "pivot": .bool(planned.isPivot), "compensation": .bool(step.compensation != nil),
                    ]
                }),
        ]
    }

    /// - Parameter input: the run's input as it may be shown (sensitive fields masked).
    /// - Parameter waits: the steps a participant holds back now (known to the node driving the run).
    static func run(
        _ run: StoredRun, input: JSONValue, attempts: [AttemptRecord], graph: JSONValue = .null, waits: [String: ParticipantWait] = [:]
    ) -> JSONValue {
        let steps: [JSONValue] = run.state.steps.enumerated().map { index, step in
            let stepAttempts = attempts.filter { $0.key.step == index }.map(attempt)
            return [
                "waiting": waits[step.name].map(wait) ?? .null,
                "name": .string(step.name), "status": .string(step.status.rawValue), "attempts": .int(Int64(step.attempts)),
                "compensationAttempts": .int(Int64(step.compensationAttempts)),
                "nextAttemptAt": step.dueAt.map(timestamp) ?? .null,
                "response": step.response.map { ["status": .int(Int64($0.status)), "body": $0.body] } ?? .null,
                "lastError": step.lastError.map(JSONValue.string) ?? .null,
                "outcomeUnknown": .bool(step.outcomeUnknown),
                "resolution": step.resolution.map(resolution) ?? .null,
                "idempotencyKey": .string(IdempotencyKey.of(runID: run.id, step: step.name, phase: .forward)),
                "attemptLog": .array(stepAttempts),
            ]
        }
        return [
            "id": .string(run.id), "saga": .string(run.sagaName), "version": .int(Int64(run.sagaVersion)),
            "definitionHash": .string(run.definitionHash), "status": .string(run.state.status.rawValue), "input": input,
            "createdAt": timestamp(run.createdAt), "updatedAt": timestamp(run.updatedAt),
            "failure": failure(run.state.failure), "compensationFailure": failure(run.state.compensationFailure),
            "stuck": failure(run.state.stuck), "deadlineAt": run.state.deadlineAt.map(timestamp) ?? .null,
            "idempotencyKey": run.idempotencyKey.map(JSONValue.string) ?? .null,
            "traceId": run.trace.map { .string($0.traceID) } ?? .null,
            "traceparent": run.trace.map { .string($0.parent) } ?? .null,
            "steps": .array(steps), "links": links(run.id), "graph": graph,
        ]
    }

    /// Who resolved a step (or its compensation) by hand, when, and what they did.
    static func resolution(_ resolution: StepResolution) -> JSONValue {
        ["by": .string(resolution.by), "note": .string(resolution.note), "at": timestamp(resolution.at)]
    }

    static func wait(_ wait: ParticipantWait) -> JSONValue {
        [
            "participant": .string(wait.participant), "reason": .string(wait.reason.rawValue),
            "until": wait.until.map(timestamp) ?? .null,
        ]
    }

    static func participant(_ status: ParticipantStatus) -> JSONValue {
        func number(_ value: Double?) -> JSONValue {
            value.map { .double(($0 * 10).rounded() / 10) } ?? .null
        }
        return [
            "name": .string(status.id.name), "saga": status.id.saga.map(JSONValue.string) ?? .null,
            "circuit": status.state.map { .string($0.rawValue) } ?? .null,
            "failureRate": number(status.failureRate), "slowCallRate": number(status.slowCallRate),
            "callsInWindow": .int(Int64(status.callsInWindow)), "inFlight": .int(Int64(status.inFlight)),
            "queued": .int(Int64(status.queued)), "nextProbeAt": status.nextProbeAt.map(timestamp) ?? .null,
            "pausedUntil": status.pausedUntil.map(timestamp) ?? .null, "timesOpened": .int(Int64(status.timesOpened)),
            "sent": .int(Int64(status.sent)), "failed": .int(Int64(status.failed)), "heldBack": .int(Int64(status.heldBack)),
            "settings": settings(status.settings), "summary": .string(status.settings.summary),
        ]
    }

    static func settings(_ settings: ParticipantSettings) -> JSONValue {
        var out: [String: JSONValue] = [:]
        if let baseURL = settings.baseURL { out["baseUrl"] = .string(baseURL) }
        if let breaker = settings.circuitBreaker {
            var members: [String: JSONValue] = [
                "failureRate": .double(breaker.failureRate), "minimumCalls": .int(Int64(breaker.minimumCalls)),
                "openFor": .string(DurationText.format(breaker.openFor)), "maxOpenFor": .string(DurationText.format(breaker.maxOpenFor)),
                "backoffCoefficient": .double(breaker.backoffCoefficient), "probes": .int(Int64(breaker.probes)),
            ]
            switch breaker.window {
            case .calls(let n): members["windowCalls"] = .int(Int64(n))
            case .time(let span): members["windowTime"] = .string(DurationText.format(span))
            }
            if let slow = breaker.slowCall {
                members["slowCall"] = .string(DurationText.format(slow))
                members["slowCallRate"] = .double(breaker.slowCallRate)
            }
            out["circuitBreaker"] = .object(members)
        }
        if let maxInFlight = settings.maxInFlight { out["bulkhead"] = ["maxInFlight": .int(Int64(maxInFlight))] }
        if let rate = settings.rateLimit { out["rateLimit"] = ["perSecond": .double(rate.perSecond), "burst": .int(Int64(rate.burst))] }
        return .object(out)
    }

    static func attempt(_ record: AttemptRecord) -> JSONValue {
        [
            "phase": .string(record.key.phase.rawValue), "number": .int(Int64(record.key.number)),
            "idempotencyKey": .string(record.key.idempotencyKey), "startedAt": timestamp(record.startedAt),
            "sends": .int(Int64(record.sends)), "finishedAt": record.finishedAt.map(timestamp) ?? .null,
            "outcome": record.succeeded.map { .string($0 ? "succeeded" : "failed") } ?? .string("in_flight"),
            "httpStatus": record.httpStatus.map { .int(Int64($0)) } ?? .null,
            "error": record.error.map(JSONValue.string) ?? .null,
            "durationMs": record.durationMs.map { .int(Int64($0)) } ?? .null,
            "node": record.node.map(JSONValue.string) ?? .null,
        ]
    }

    static func event(_ stored: StoredEvent) -> JSONValue {
        let event = stored.event
        return [
            "sequence": .int(stored.sequence), "at": timestamp(event.at), "kind": .string(event.kind.rawValue),
            "step": event.step.map(JSONValue.string) ?? .null, "phase": event.phase.map { .string($0.rawValue) } ?? .null,
            "attempt": event.attempt.map { .int(Int64($0)) } ?? .null, "message": .string(event.message), "data": event.data,
        ]
    }

    static func definition(_ definition: StoredDefinition, full: Bool, graph: JSONValue? = nil) -> JSONValue {
        var out: [String: JSONValue] = [
            "name": .string(definition.name), "version": .int(Int64(definition.version)), "hash": .string(definition.hash),
            "registeredAt": timestamp(definition.createdAt),
            "description": definition.document["description"] ?? .null,
            "steps": .array((definition.document["steps"]?.arrayValue ?? []).map { $0["name"] ?? .null }),
        ]
        if full { out["definition"] = maskingSecretHeaders(definition.document) }
        if let graph { out["graph"] = graph }
        return .object(out)
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

    static func problems(_ error: DefinitionError) -> JSONValue {
        .array(error.problems.map { problem in
            [
                "path": problem.path.map { .string($0.description) } ?? .null,
                "line": problem.location.map { .int(Int64($0.line)) } ?? .null,
                "column": problem.location.map { .int(Int64($0.column)) } ?? .null,
                "message": .string(problem.message),
            ]
        })
    }
}
