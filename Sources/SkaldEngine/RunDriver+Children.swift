import Foundation
import SkaldCore

/// The driver's part in steps that run a child saga: it starts the child (once: the child's idempotency key is the
/// step's), looks at it whenever the step's `dueAt` comes, reverts it when the step is undone, and cancels it when
/// the run turns back while it goes on. The machine (`SagaMachine+Children.swift`) says what each look means.
extension RunDriver {
    mutating func moveChild(_ index: Int, storing: (Bool, () async throws -> Void) async -> Bool) async {
        let now = engine.clock.now()
        let step = state.steps[index]
        guard let due = step.dueAt, due <= now, let child = machine.saga.steps[index].action.child else { return }
        let transition: SagaMachine.Transition
        switch step.status {
        case .running:
            switch await startChild(child, step: step.name) {
            case .success(let childID): transition = machine.childStarted(state, step: index, child: childID, at: now)
            case .failure(let problem): transition = machine.waitCannotBegin(state, step: index, reason: problem.reason, at: now)
            }
        case .waiting, .compensating:
            guard let childID = step.wait?.token else { return }
            let found = await look(at: childID)
            if step.status == .compensating, found.completedNeedingRevert {
                // Undo the step: revert the child (its compensations run); the next looks follow it.
                _ = try? await engine.revert(runID: childID, note: "its parent run \(runID) undoes \(step.name)", by: "run \(runID)")
                driveHere(childID)
            }
            if step.status == .waiting, state.status != .running, found.state == .running, !cancelledChildren.contains(childID) {
                // The run turned back (or was abandoned) while the child goes on: cancel it, so that it compensates.
                cancelledChildren.insert(childID)
                _ = try? await engine.cancel(runID: childID, reason: "its parent run \(runID) turned back", by: "run \(runID)")
            }
            transition = machine.childChecked(state, step: index, child: found.state, at: now)
        default:
            return
        }
        if await storing(true, { try await engine.store.recordTransition(runID: runID, at: now, transition: transition) }) {
            commit(transition)
        }
    }

    /// Starts the child run (or finds the one this step started before a crash or a take-over: same key), and makes
    /// sure something drives it.
    private mutating func startChild(_ child: ChildSagaDefinition, step: String) async -> Result<String, WaitRunner.Problem> {
        let store = engine.store
        do {
            // The depth: how many parents this run has, by the keys children are started with.
            var depth = 0
            var key = try await store.run(id: runID)?.idempotencyKey
            while let parent = key.flatMap(ChildSagaDefinition.parent(ofKey:)), depth <= ChildSagaDefinition.maximumDepth {
                depth += 1
                key = try await store.run(id: parent.runID)?.idempotencyKey
            }
            guard depth < ChildSagaDefinition.maximumDepth else {
                return .failure(WaitRunner.Problem(reason: "it would start a child \(depth + 1) levels below the first run, over the limit of \(ChildSagaDefinition.maximumDepth); sagas that start each other may loop"))
            }
            guard let stored = try await store.definition(name: child.name, version: child.version) else {
                return .failure(WaitRunner.Problem(reason: "the saga \(child.name)\(child.version.map { " v\($0)" } ?? "") is not registered; register it (skald define, or skald serve --sagas) and start the run again"))
            }
            let definition = try DefinitionParser.parse(stored.document)
            let input: JSONValue
            do {
                input = try context().render(child.input)
            } catch {
                return .failure(WaitRunner.Problem(reason: "cannot write the child run's input: \(error.message)"))
            }
            let started = try await engine.start(
                definition, input: input, idempotencyKey: ChildSagaDefinition.key(runID: runID, step: step), trace: trace,
                sameVersion: child.version != nil)
            driveHere(started.runID)
            return .success(started.runID)
        } catch let error as InputError {
            return .failure(WaitRunner.Problem(reason: "the child run of \(child.name) refused its input: \(error.problems.joined(separator: "; "))"))
        } catch {
            return .failure(WaitRunner.Problem(reason: "cannot start the child run of \(child.name): \(error)"))
        }
    }

    /// Outside `skald serve` (skald run, skald resume) nothing else drives a run: the child is driven beside its parent.
    private func driveHere(_ childID: String) {
        guard !engine.isServing.load(ordering: .acquiring) else { return }
        let engine = self.engine
        Task { _ = try? await engine.drive(runID: childID) }
    }

    struct ChildLook {
        var state: ChildState
        /// Completed: seen by a step being undone, its revert is to be asked for.
        var completedNeedingRevert: Bool { if case .completed = state { true } else { false } }
    }

    /// The child run as the store holds it now.
    private func look(at childID: String) async -> ChildLook {
        guard let run = try? await engine.store.run(id: childID) else { return ChildLook(state: .missing) }
        let reason = (run.state.compensationFailure ?? run.state.stuck ?? run.state.failure)?.summary ?? ""
        switch run.state.status {
        case .running, .compensating:
            return ChildLook(state: .running)
        case .completed:
            let output = (try? engine.machine(for: run, checkingState: false))?.saga.output(of: run.state, input: run.input)
            if case .success(let value)? = output { return ChildLook(state: .completed(output: value)) }
            return ChildLook(state: .completed(output: .null))
        case .compensated:
            return ChildLook(state: .compensated(reason: reason))
        case .compensationFailed, .stuck, .abandoned:
            return ChildLook(state: .needsPerson(status: run.state.status, reason: reason.isEmpty ? "see its history" : reason))
        }
    }
}
