import Foundation
import Logging
import SkaldCore

/// A saga whose runs this node cannot build: the environment it was given lacks variables the saga reads (they are
/// not set, or `--allow-env` does not allow them). Its runs are left to nodes that can run it, never failed here.
public struct SagaThisNodeCannotRun: Sendable, Equatable {
    public var saga: String
    public var version: Int
    public var missing: [String]
    /// Runs of it this node found (and, on a shared store, handed back) since it started.
    public var runs: Int

    public var message: String {
        "cannot run \(saga) v\(version): this node's environment lacks \(missing.joined(separator: ", ")) (not set, or not allowed by --allow-env); "
            + "its runs are left to nodes that can run it; start this node with \(missing.count == 1 ? "it" : "them") set and allowed"
    }
}

/// The run was not driven here because this node cannot build its calls; on a shared store it was handed back.
struct CannotRunHere: Error, CustomStringConvertible {
    var runID: String
    var saga: SagaThisNodeCannotRun

    var description: String { "run \(runID): this node \(saga.message)" }
}

extension Engine {
    /// Every saga this node found it cannot run, for `/health`.
    public var sagasThisNodeCannotRun: [SagaThisNodeCannotRun] {
        sagasItCannotRun.withLock { Array($0.values) }.sorted { ($0.saga, $0.version) < ($1.saga, $1.version) }
    }

    var definitionsItCannotRun: [String] { sagasItCannotRun.withLock { Array($0.keys) } }

    /// The environment variables the saga reads that this node was not given.
    func missingEnvironment(_ machine: SagaMachine) -> [String] {
        machine.environmentNames.filter { configuration.environment[$0] == nil }
    }

    /// Throws `CannotRunHere` (after handing the run back, on a shared store) when this node lacks what the run's
    /// saga reads: a node started with a narrower `--allow-env`, or without `--sagas`, must not fail other nodes'
    /// runs for good. Says so loudly the first time, once per saga.
    func refuseIfItCannotRun(_ run: StoredRun, _ machine: SagaMachine) async throws {
        let missing = missingEnvironment(machine)
        guard !missing.isEmpty else { return }
        let (entry, isNew) = sagasItCannotRun.withLock { known -> (SagaThisNodeCannotRun, Bool) in
            var entry = known[run.definitionHash]
                ?? SagaThisNodeCannotRun(saga: run.sagaName, version: run.sagaVersion, missing: missing, runs: 0)
            let isNew = known[run.definitionHash] == nil
            entry.runs += 1
            known[run.definitionHash] = entry
            return (entry, isNew)
        }
        if isNew {
            logger.error("\(entry.message)", metadata: ["saga": "\(run.sagaName)", "run_id": "\(run.id)"])
        }
        if let shared {
            do {
                try await shared.releaseRun(id: run.id)
            } catch {
                logger.error("handing the run back failed; other nodes take it when this node's lease lapses", metadata: ["run_id": "\(run.id)", "error": "\(error)"])
            }
        }
        throw CannotRunHere(runID: run.id, saga: entry)
    }
}
