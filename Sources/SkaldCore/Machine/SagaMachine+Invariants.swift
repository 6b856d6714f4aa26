import Foundation

/// A rule of the machine's state that a stored run breaks, with where in the run (as an export line spells it:
/// `steps[1].dueAt`).
public struct RunStateProblem: Sendable, Hashable, CustomStringConvertible {
    public var path: JSONPath
    public var message: String

    public init(path: JSONPath, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

extension SagaMachine {
    /// The most attempts a step may have stored (in either phase), far above any retry policy (`maxAttempts` is at
    /// most `DefinitionParser.maximumAttempts`) and far below where counting on would overflow.
    public static let maximumStoredAttempts = 1_000_000_000

    /// The latest time a stored run may hold (the end of year 9999), so that no arithmetic on a stored time can
    /// overflow; the earliest is 1970.
    public static let latestStoredTime = Date(timeIntervalSince1970: 253_402_300_799)

    /// Every rule the machine relies on that `state` breaks; empty for a state the machine itself wrote.
    ///
    /// The machine traps (rather than guess) when its inputs break these rules, so a run read from a store or an
    /// import is checked here before it is driven, and one that breaks any is left undriven, shown as unrunnable.
    /// - The steps are the definition's, in its order.
    /// - A step's status, phase and due time agree: only a step whose forward call or compensation is under way
    ///   (`running`, `compensating`) has a due time, and only a step with a compensation compensates.
    /// - Attempt counts are whole, bases within them, and the attempts the retry policy counts within its
    ///   `maxAttempts`.
    /// - Times are between 1970 and 9999.
    public func problems(in state: RunState) -> [RunStateProblem] {
        var problems: [RunStateProblem] = []
        let steps = JSONPath().appending("steps")
        let stored = state.steps.prefix(saga.steps.count).map(\.name), defined = saga.steps.map(\.name)
        guard stored == defined else {
            return [
                RunStateProblem(
                    path: steps,
                    message: "the steps (\(stored.joined(separator: ", "))) are not the steps of its definition (\(defined.joined(separator: ", ")))")
            ]
        }
        // After the saga's steps come the items of its forEach steps: each step's items in one run, numbered from 0.
        var itemCounts: [String: Int] = [:]
        for position in state.steps.indices.dropFirst(saga.steps.count) {
            let step = state.steps[position]
            guard let element = step.element, let owner = stepPositions[element.step], saga.steps[owner].forEach != nil,
                element.index == itemCounts[element.step, default: 0], state.steps[owner].elements?.contains(position) == true
            else {
                return [
                    RunStateProblem(
                        path: steps.appending(position),
                        message: "\(step.name) is not the next item of one of the saga's forEach steps (\(saga.steps.filter { $0.forEach != nil }.map(\.name).joined(separator: ", ")))")
                ]
            }
            itemCounts[element.step, default: 0] += 1
        }
        if let over = itemCounts.first(where: { $0.value > SagaDefinition.maximumItems }) {
            return [RunStateProblem(path: steps, message: "\(over.key) has \(over.value) items, over the limit of \(SagaDefinition.maximumItems)")]
        }
        func time(_ date: Date?, _ path: JSONPath) {
            guard let date else { return }
            if !(date.timeIntervalSince1970 >= 0 && date <= Self.latestStoredTime) {
                problems.append(RunStateProblem(path: path, message: "\(date.timeIntervalSince1970) is not a time from 1970 to 9999"))
            }
        }
        time(state.deadlineAt, JSONPath().appending("deadlineAt"))
        for (index, step) in state.steps.enumerated() {
            let path = steps.appending(index)
            let definition = definition(of: index, in: state)
            func report(_ key: String, _ message: String) {
                problems.append(RunStateProblem(path: path.appending(key), message: "\(step.name): \(message)"))
            }
            time(step.dueAt, path.appending("dueAt"))
            time(step.firstAttemptAt, path.appending("firstAttemptAt"))
            time(step.compensationFirstAttemptAt, path.appending("compensationFirstAttemptAt"))
            time(step.resolution?.at, path.appending("resolution").appending("at"))
            if step.dueAt != nil && step.status.phase == nil && step.status != .waiting {
                report("dueAt", "a step in status \(step.status.rawValue) has no attempt to make, so it cannot have a due time")
            }
            if step.status == .waiting {
                if definition.action.kind == nil {
                    report("status", "the step makes an HTTP call, so it cannot be waiting")
                } else if step.wait?.kind != definition.action.kind || step.dueAt == nil {
                    report("wait", "a waiting step has the wait its definition declares (\(definition.action.kind?.rawValue ?? "")) and the time it ends")
                }
            }
            if step.status == .waiting, definition.action.callback != nil, step.wait?.token == nil || step.wait?.attempt != step.attempts {
                report("wait", "a step waiting for its callback has the token of its current attempt")
            }
            if step.status == .running && definition.action.waitsInsteadOfCalling && step.dueAt == nil {
                report("dueAt", "a running step that waits instead of calling has nothing in flight, so it must be due")
            }
            time(step.wait?.since, path.appending("wait").appending("since"))
            time(step.wait?.until, path.appending("wait").appending("until"))
            if ([.compensating, .compensationFailed, .compensationResolved].contains(step.status) || step.compensationAttempts > 0)
                && !definition.isUndoable
            {
                report("status", "the step declares no compensation, so it cannot be \(step.status.rawValue) or have compensation attempts")
            }
            if step.elements != nil && (step.dueAt != nil || step.attempts > 0 || step.compensationAttempts > 0) {
                report("dueAt", "a forEach step that ran over its items sends nothing of its own, so it has no due time and no attempts")
            }
            if step.status == .skipped && (definition.when == nil || step.attempts > 0 || step.element != nil) {
                report("status", definition.when == nil ? "the step has no \"when\", so it cannot be skipped" : "a skipped step never made an attempt")
            }
            if step.status == .succeeded && step.response == nil && definition.request != nil && step.elements == nil {
                report("response", "a succeeded step has the response later steps read; this one has none")
            }
            for (phase, attempts, base, key, baseKey) in [
                (Phase.forward, step.attempts, step.attemptsBase, "attempts", "attemptsBase"),
                (.compensate, step.compensationAttempts, step.compensationAttemptsBase, "compensationAttempts", "compensationAttemptsBase"),
            ] {
                guard attempts >= 0, attempts <= Self.maximumStoredAttempts else {
                    report(key, "\(attempts) is not a count of attempts from 0 to \(Self.maximumStoredAttempts)")
                    continue
                }
                guard base >= 0, base <= attempts else {
                    report(baseKey, "\(base) must be from 0 to the step's \(key) (\(attempts))")
                    continue
                }
                guard let call = phase == .forward ? definition.request : definition.compensation else { continue }
                if attempts - base > call.retry.maxAttempts {
                    report(key, "\(attempts - base) attempts counted against a retry policy of maxAttempts \(call.retry.maxAttempts)")
                }
            }
            if step.status == .running && step.attempts == step.attemptsBase && step.dueAt == nil && step.elements == nil {
                report("dueAt", "a running step with no attempt made yet must be due")
            }
            if step.status == .compensating && step.compensationAttempts == step.compensationAttemptsBase && step.dueAt == nil && step.elements == nil {
                report("dueAt", "a compensating step with no compensation attempt made yet must be due")
            }
        }
        if !state.status.isTerminal && state.status != .stuck {
            let busy = state.steps.contains { $0.status.phase != nil || $0.status == .waiting }
            if !busy {
                problems.append(
                    RunStateProblem(
                        path: JSONPath().appending("status"),
                        message: "a run in status \(state.status.rawValue) has a step under way or due; none of its steps is running or compensating"))
            }
        }
        return problems
    }
}
