import Foundation
import SkaldCore

/// What a participant can be told to do wrong.
public struct Faults: Sendable, Hashable {
    /// Refuse forward requests with a 4xx (payments: card declined; inventory: out of stock; shipping: no service).
    public var reject = false
    /// Answer the next N requests with 503 Service Unavailable.
    public var failNext = 0
    /// Answer every compensation with 500.
    public var failCompensations = false
    /// Wait this long before answering.
    public var delay: Duration = .zero
    /// Apply each request, then hold the answer until `releaseHeld()`.
    public var hold = false
    /// Hold each forward request *before* applying it, until `releaseHeld()` (a service that is stuck): Skald's
    /// attempts time out, and the request is processed only after the release. Compensations are answered.
    public var stall = false

    public init(
        reject: Bool = false, failNext: Int = 0, failCompensations: Bool = false, delay: Duration = .zero, hold: Bool = false,
        stall: Bool = false
    ) {
        self.reject = reject
        self.failNext = failNext
        self.failCompensations = failCompensations
        self.delay = delay
        self.hold = hold
        self.stall = stall
    }
}

/// One action a participant applied (not a replay of a stored answer).
public struct LedgerEntry: Sendable, Hashable {
    public var idempotencyKey: String?
    public var action: String
    public var resource: String
    public var at: Date
}

/// A stored answer, replayed for a repeated idempotency key.
struct StoredAnswer: Sendable {
    var status: Int
    var body: JSONValue
}

/// The participant's memory: idempotency cache, ledger, faults, held requests, and what was undone.
///
/// It keeps the contract Skald asks of participants (docs/semantics.md, "Participants: what a compensation may meet"): a compensation names the forward
/// request it undoes by that request's idempotency key; it may arrive before the forward request is processed, or
/// for one that never arrived, and then answers success with nothing to undo; either way the key is remembered, and
/// a forward request with it that arrives later is refused (409), not applied.
actor ParticipantState {
    var faults = Faults()
    private(set) var ledger: [LedgerEntry] = []
    private(set) var requestCount = 0
    /// The trace headers of every request, in order of arrival (for tests of trace propagation).
    private(set) var traces: [ReceivedTrace] = []

    func received(_ trace: ReceivedTrace) { traces.append(trace) }
    /// Forward idempotency keys, and the resource each one's request created.
    private var createdByKey: [String: String] = [:]
    /// Forward idempotency keys whose action was compensated, or compensated before it arrived.
    private var undoneKeys: Set<String> = []
    /// Forward requests refused because their compensation came first.
    private(set) var refusedAfterUndo = 0
    private var answers: [String: StoredAnswer] = [:]
    private var inProgress: [String: [CheckedContinuation<StoredAnswer, Never>]] = [:]
    private var held: [CheckedContinuation<Void, Never>] = []
    private var changeWaiters: [CheckedContinuation<Void, Never>] = []
    private var resources = Resources()

    func setFaults(_ faults: Faults) { self.faults = faults }

    var heldCount: Int { held.count }

    func releaseHeld() {
        let waiting = held
        held.removeAll()
        for continuation in waiting { continuation.resume() }
    }

    /// Suspends until a request is held (for tests that kill the engine mid-request).
    func waitForHeld(count: Int) async {
        while held.count < count {
            await withCheckedContinuation { changeWaiters.append($0) }
        }
    }

    /// Runs `apply` once per idempotency key; repeats get the stored answer (waiting if the first is still running).
    ///
    /// - Parameter undoing: for a compensation that names its forward request by idempotency key: that key. `apply`
    ///   then gets the resource the forward request created, or is not called when there is nothing to undo.
    func answer(
        key: String?, action: String, isCompensation: Bool, undoing forwardKey: String? = nil,
        apply: @Sendable (inout Resources, Faults, _ created: String?) -> (status: Int, body: JSONValue, resource: String)
    ) async -> StoredAnswer {
        requestCount += 1
        notifyChange()
        if let key {
            if let stored = answers[key] { return stored }
            if inProgress[key] != nil {
                return await withCheckedContinuation { inProgress[key]!.append($0) }
            }
        }
        if faults.failNext > 0 {
            faults.failNext -= 1
            return StoredAnswer(status: 503, body: ["error": "unavailable", "message": "try again later"])
        }
        if isCompensation && faults.failCompensations {
            return StoredAnswer(status: 500, body: ["error": "internal", "message": "the undo failed"])
        }
        if let key { inProgress[key] = [] }
        if !isCompensation && faults.stall {
            await withCheckedContinuation { continuation in
                held.append(continuation)
                notifyChange()
            }
        }
        let (status, body, resource): (Int, JSONValue, String)
        if !isCompensation, let key, undoneKeys.contains(key) {
            refusedAfterUndo += 1
            (status, body, resource) = (
                409, ["error": "compensated", "message": "the request with Idempotency-Key \(key) was compensated before it was processed; it is not applied"], ""
            )
        } else if let forwardKey {
            undoneKeys.insert(forwardKey)
            if let created = createdByKey[forwardKey] {
                (status, body, resource) = apply(&resources, faults, created)
            } else {
                (status, body, resource) = (
                    200, ["status": "nothing_to_undo", "message": "no request with Idempotency-Key \(forwardKey) was applied; it will be refused if it arrives"], ""
                )
            }
        } else {
            (status, body, resource) = apply(&resources, faults, nil)
        }
        if status < 300 && !resource.isEmpty {
            ledger.append(LedgerEntry(idempotencyKey: key, action: action, resource: resource, at: Date()))
            if !isCompensation, let key { createdByKey[key] = resource }
        }
        let answer = StoredAnswer(status: status, body: body)
        if faults.hold {
            await withCheckedContinuation { continuation in
                held.append(continuation)
                notifyChange()
            }
        }
        if let key {
            answers[key] = answer
            for waiter in inProgress.removeValue(forKey: key) ?? [] { waiter.resume(returning: answer) }
        }
        return answer
    }

    private func notifyChange() {
        let waiters = changeWaiters
        changeWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

}

/// The things a participant has created (reservations, charges, shipments).
struct Resources: Sendable {
    private var counter = 0
    var items: [String: JSONValue] = [:]

    mutating func newID(prefix: String) -> String {
        counter += 1
        return "\(prefix)-\(counter)"
    }
}

/// The W3C trace headers one request arrived with.
public struct ReceivedTrace: Sendable, Hashable {
    public var idempotencyKey: String?
    public var attempt: Int?
    public var traceparent: String?
    public var tracestate: String?
}
