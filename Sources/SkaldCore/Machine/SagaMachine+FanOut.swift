import Foundation

/// Fan-out: a `forEach` step runs its call once per item. Each item is a step of the run of its own, named `STEP[i]`
/// and placed after the saga's steps, with its own attempts, `Idempotency-Key`, answer and compensation; the step
/// itself sends nothing and its status sums up its items'.
extension SagaMachine {
    /// Where the definition of the step at `position` is: its own, or (for an item) its `forEach` step's.
    public func definitionIndex(of position: Int, in state: RunState) -> Int {
        guard position >= saga.steps.count else { return position }
        guard let element = state.steps[position].element, let index = stepPositions[element.step] else {
            preconditionFailure("step \(state.steps[position].name) at \(position) is neither a saga step nor an item of one")
        }
        return index
    }

    /// The definition of the step at `position` (for an item, its `forEach` step's).
    public func definition(of position: Int, in state: RunState) -> StepDefinition {
        saga.steps[definitionIndex(of: position, in: state)]
    }

    /// Whether step `index` is a `forEach` step that came due and has not yet run over its items: the driver works
    /// them out (`fanOut`) instead of sending anything.
    public func fansOut(_ state: RunState, step index: Int) -> Bool {
        let step = state.steps[index]
        return index < saga.steps.count && saga.steps[index].forEach != nil && step.status == .running && step.dueAt != nil
            && step.elements == nil && step.attempts == 0
    }

    /// A due `forEach` step runs over `items`: one item step each, the first `maxConcurrency` due at once. No items
    /// make the step succeed with nothing sent; more than `SagaDefinition.maximumItems` (or a value that is not an
    /// array, as `problem` says) make it fail for good with nothing applied, and the run turns back.
    public func fanOut(_ state: RunState, step index: Int, items: Result<[JSONValue], TemplateRenderError>, at now: Date) -> Transition {
        precondition(fansOut(state, step: index), "fanOut of step \(state.steps[index].name), which is not due to run over its items")
        let before = state
        var state = state
        let definition = saga.steps[index]
        let name = definition.name
        var events: [RunEvent] = []
        state.steps[index].dueAt = nil
        var failure: String?
        switch items {
        case .failure(let error):
            failure = error.message
        case .success(let values) where values.count > SagaDefinition.maximumItems:
            failure = "forEach gave \(values.count) items, over the limit of \(SagaDefinition.maximumItems)"
        case .success(let values) where values.isEmpty:
            let start = state.steps.count
            state.steps[index].elements = start..<start
            state.steps[index].status = .succeeded
            events.append(
                RunEvent(
                    at: now, kind: .stepSucceeded, step: name, phase: .forward, message: "\(name) succeeded: forEach gave no items, so nothing was sent",
                    data: ["items": 0]))
            advanceForward(&state, at: now, events: &events)
        case .success(let values):
            let start = state.steps.count
            for position in values.indices { state.steps.append(StepState(name: StepElement.name(of: name, index: position))) }
            state.steps[index].elements = start..<(start + values.count)
            events.append(
                RunEvent(
                    at: now, kind: .itemsStarted, step: name, phase: .forward,
                    message: "\(name) runs its call for \(values.count) item\(values.count == 1 ? "" : "s"), up to \(definition.maxConcurrency) at a time, each with its own key (\(name)[0] … \(name)[\(values.count - 1)])",
                    data: ["items": .int(Int64(values.count)), "maxConcurrency": .int(Int64(definition.maxConcurrency))]))
            advanceForward(&state, at: now, events: &events)
        }
        if let failure {
            state.steps[index].lastError = failure
            forwardFailedForGood(
                &state, index: index, failure: AttemptFailure(kind: .request, reason: failure, isRetryable: false, mayHaveApplied: false), attempt: 0,
                at: now, events: &events)
        }
        return Transition(state: state, events: events, before: before)
    }

    /// Brings each `forEach` step that ran over its items up to date: while the run goes forward its next items
    /// become due (at most `maxConcurrency` under way), and its status sums up its items'. A step whose items all
    /// succeeded succeeds.
    func refreshItems(_ state: inout RunState, at now: Date, events: inout [RunEvent]) {
        for index in forEachSteps {
            guard let range = state.steps[index].elements, !range.isEmpty else { continue }
            let definition = saga.steps[index]
            if state.status == .running && state.steps[index].status == .running {
                var underWay = range.count(where: { state.steps[$0].status == .running || state.steps[$0].status == .waiting })
                for position in range where underWay < definition.maxConcurrency && state.steps[position].status == .pending {
                    state.steps[position].status = .running
                    state.steps[position].dueAt = now
                    underWay += 1
                }
            }
            let status = summedStatus(state, range)
            let was = state.steps[index].status
            guard status != was else { continue }
            state.steps[index].status = status
            if status == .succeeded && was == .running {
                state.steps[index].lastError = nil
                events.append(
                    RunEvent(
                        at: now, kind: .stepSucceeded, step: state.steps[index].name, phase: .forward,
                        message: "\(state.steps[index].name) succeeded: all \(range.count) item\(range.count == 1 ? "" : "s") done",
                        data: ["items": .int(Int64(range.count))]))
            }
        }
    }

    /// What a `forEach` step's status is, given its items'.
    private func summedStatus(_ state: RunState, _ range: Range<Int>) -> StepStatus {
        let items = state.steps[range]
        func any(_ status: StepStatus) -> Bool { items.contains { $0.status == status } }
        if any(.compensationFailed) { return .compensationFailed }
        if any(.compensating) || (state.status == .compensating && range.contains { awaitsCompensation(state, $0) }) { return .compensating }
        if any(.running) || any(.waiting) { return .running }
        if state.status == .running && any(.pending) { return .running }
        if items.allSatisfy({ $0.status.isDone }) { return .succeeded }
        if items.contains(where: { $0.status.isUndone }) { return .compensated }
        if any(.outcomeUnknown) { return .outcomeUnknown }
        if any(.failed) { return .failed }
        if any(.compensationSkipped) { return .compensationSkipped }
        return items.contains { $0.status.isDone } ? .succeeded : .pending
    }

    /// The compensations of `index`'s items under way, when it is a `forEach` step at its `maxConcurrency`.
    func itemCompensationsFull(_ state: RunState, forEachStep index: Int) -> Bool {
        guard let range = state.steps[index].elements else { return false }
        return range.count(where: { state.steps[$0].status == .compensating }) >= saga.steps[index].maxConcurrency
    }
}
