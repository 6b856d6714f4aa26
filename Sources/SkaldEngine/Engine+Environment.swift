import Foundation
import Logging
import SkaldCore

/// A saga whose runs this node cannot build: the environment it was given lacks variables the saga reads (they are
/// not set, or `--allow-env` does not allow them), or the runs' `writeOnly` input is sealed with a data key this node
/// does not have. Its runs are left to nodes that can run it, never failed here.
public struct SagaThisNodeCannotRun: Sendable, Equatable {
    public var saga: String
    public var version: Int
    /// Why, and what to do.
    public var reason: String
    /// Runs of it this node found (and, on a shared store, handed back) since it started.
    public var runs: Int

    public var message: String { "cannot run \(saga) v\(version): \(reason); its runs are left to nodes that can run it" }
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

    /// The run's input as its calls need it (its sealed `writeOnly` fields opened), or `CannotRunHere` (after handing
    /// the run back, on a shared store) when this node lacks what the run's saga reads or the key its input was sealed
    /// with: a node started with a narrower `--allow-env`, without `--sagas` or without `--data-key` must not fail
    /// other nodes' runs for good. Says so loudly the first time, once per saga.
    func inputToRun(_ run: StoredRun, _ machine: SagaMachine) async throws -> JSONValue {
        let missing = missingEnvironment(machine)
        var reason: String?
        var input = run.input
        if !missing.isEmpty {
            reason = "this node's environment lacks \(missing.joined(separator: ", ")) (not set, or not allowed by --allow-env); start it with \(missing.count == 1 ? "it" : "them") set and allowed"
        } else if let schema = machine.saga.inputSchema, DataKey.containsSealed(run.input, sealedOnlyAt: schema) {
            // Only the writeOnly fields were sealed; anything else is the client's data, whatever it looks like.
            if let key = configuration.dataKey {
                do {
                    input = try schema.transformingWriteOnly(run.input) { value in
                        guard let sealed = DataKey.sealedText(value) else { return value }
                        return try key.open(sealed)
                    }
                } catch {
                    reason = "its runs' writeOnly input does not open with this node's --data-key (it was sealed with another); start it with the key the runs were stored with"
                }
            } else {
                reason = "its runs' writeOnly input is sealed and this node has no --data-key; start it with the key the runs were stored with (SKALD_DATA_KEY)"
            }
        }
        guard let reason else { return input }
        let (entry, isNew) = sagasItCannotRun.withLock { known -> (SagaThisNodeCannotRun, Bool) in
            var entry = known[run.definitionHash] ?? SagaThisNodeCannotRun(saga: run.sagaName, version: run.sagaVersion, reason: reason, runs: 0)
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

    /// The input as the store keeps it: every `writeOnly` field sealed with the data key, when there is one.
    /// - Throws: `InputError` for a writeOnly field that is itself a sealed value's marker: it would be taken for one.
    func inputToStore(_ input: JSONValue, _ machine: SagaMachine) throws -> JSONValue {
        guard let schema = machine.saga.inputSchema else { return input }
        if DataKey.containsSealed(input, sealedOnlyAt: schema) {
            throw InputError(
                problems: ["a writeOnly field of the input is an object {\"\(DataKey.marker)\": …}, which Skald keeps for the values it seals; send the value itself"],
                missingEnvironment: [])
        }
        guard let key = configuration.dataKey else { return input }
        return try schema.transformingWriteOnly(input) { try key.seal($0) }
    }
}

extension Engine {
    /// Why a start that found its idempotency key taken is not a repeat of the start that took it, or nil when it is:
    /// the same saga (and version, when asked for) and the same input. Payment APIs answer a reused key with another
    /// request this way, so a client's bug is not hidden and the second order is not silently dropped.
    func reusedKey(_ key: String, run: StoredRun, definition: SagaDefinition, input: JSONValue, sameVersion: Bool) -> String? {
        let fix = "send the same request to get that run again, or use a new key for a new one"
        if run.sagaName != definition.name {
            return "idempotency key \(key) was first used to start saga \(run.sagaName) (run \(run.id)), not \(definition.name); \(fix)"
        }
        if sameVersion && run.sagaVersion != definition.version {
            return "idempotency key \(key) was first used with version \(run.sagaVersion) of \(run.sagaName) (run \(run.id)), not version \(definition.version); \(fix)"
        }
        let schema = machine(for: definition).saga.inputSchema
        var stored = run.input
        var given = input
        if let schema, DataKey.containsSealed(run.input, sealedOnlyAt: schema) {
            if let key = configuration.dataKey,
                let opened = try? schema.transformingWriteOnly(run.input, { value in try DataKey.sealedText(value).map(key.open) ?? value })
            {
                stored = opened
            } else {
                // Without the key the sealed fields cannot be compared: the rest of the input can.
                stored = schema.masking(run.input)
                given = schema.masking(input)
            }
        }
        if stored != given {
            return "idempotency key \(key) was first used with another input (run \(run.id)); \(fix)"
        }
        return nil
    }
}
