import Synchronization

/// A queue with one consumer that awaits: commands to a run's driver.
final class Mailbox<Message: Sendable>: Sendable {
    private struct State {
        var messages: [Message] = []
        var waiter: CheckedContinuation<Message?, Never>?
        var isClosed = false
    }

    private let state = Mutex(State())

    /// Queues a message; returns false (and drops it) when the mailbox is closed.
    @discardableResult
    func send(_ message: Message) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Message?, Never>?) in
            if state.isClosed { return (false, nil) }
            if let waiter = state.waiter {
                state.waiter = nil
                return (true, waiter)
            }
            state.messages.append(message)
            return (true, nil)
        }
        waiter?.resume(returning: message)
        return accepted
    }

    /// Puts a message back at the front of the queue, for the next consumer (even when closed is not yet set).
    func sendFirst(_ message: Message) {
        let waiter = state.withLock { state -> CheckedContinuation<Message?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.messages.insert(message, at: 0)
            return nil
        }
        waiter?.resume(returning: message)
    }

    /// The next message, or nil when the waiting task is cancelled or the mailbox is closed.
    func next() async -> Message? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Message?, Never>) in
                let ready: Message?? = state.withLock { state in
                    if !state.messages.isEmpty { return .some(state.messages.removeFirst()) }
                    if state.isClosed || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Message?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Takes every message still queued.
    func drainRemaining() -> [Message] {
        state.withLock { state in
            defer { state.messages.removeAll() }
            return state.messages
        }
    }

    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Message?, Never>? in
            state.isClosed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }
}

/// Limits how many attempts are in flight at once across all runs.
final class AttemptLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters = FIFO<(id: Int, continuation: CheckedContinuation<Bool, Never>)>()
        var nextID = 0
    }

    private let state: Mutex<State>
    let limit: Int

    init(limit: Int) {
        self.limit = max(1, limit)
        state = Mutex(State(available: max(1, limit)))
    }

    /// Slots taken now: attempts in flight (or about to be sent).
    var inUse: Int { limit - state.withLock { $0.available } }

    /// Takes a slot at once if one is free and nobody is waiting for one.
    func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.available > 0, state.waiters.isEmpty else { return false }
            state.available -= 1
            return true
        }
    }

    /// Waits for a slot; returns false (holding nothing) when the task is cancelled.
    func acquire() async -> Bool {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let granted: Bool? = state.withLock { state in
                    if Task.isCancelled { return false }
                    if state.available > 0 {
                        state.available -= 1
                        return true
                    }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let granted { continuation.resume(returning: granted) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                state.waiters.remove { $0.id == id }?.continuation
            }
            waiter?.resume(returning: false)
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.popFirst()?.continuation
        }
        next?.resume(returning: true)
    }
}

/// A first-in first-out queue whose `popFirst` does not move the elements behind it (thousands of runs may wait).
struct FIFO<Element> {
    private var elements: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == elements.count }

    var first: Element? { head < elements.count ? elements[head] : nil }

    mutating func append(_ element: Element) { elements.append(element) }

    mutating func popFirst() -> Element? {
        guard head < elements.count else { return nil }
        let first = elements[head]
        head += 1
        if head == elements.count {
            elements.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= elements.count {
            elements.removeFirst(head)
            head = 0
        }
        return first
    }

    /// Removes and returns the first element that matches.
    mutating func remove(where matches: (Element) -> Bool) -> Element? {
        guard let index = elements[head...].firstIndex(where: matches) else { return nil }
        return elements.remove(at: index)
    }

    /// Removes every element that matches and returns them, in order; the others keep theirs.
    mutating func removeAll(where matches: (Element) -> Bool) -> [Element] {
        let waiting = elements[head...]
        let removed = waiting.filter(matches)
        guard !removed.isEmpty else { return [] }
        elements = waiting.filter { !matches($0) }
        head = 0
        return removed
    }
}
