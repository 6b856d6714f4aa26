import Foundation
import Synchronization
import Testing
@testable import SkaldEngine
import SkaldTestSupport

/// The registry of runs held here: an operator's action waits for a held run to change hands, instead of polling.
@Suite(.timeLimit(.minutes(10))) struct RunRegistryTests {
    @Test func aRunIsHeldOnceAndReleasedWithItsMailbox() {
        let registry = RunRegistry()
        #expect(registry.hold("r"))
        #expect(!registry.hold("r"), "held already")
        let mailbox = registry.mailbox(for: "r")
        #expect(registry.mailbox(for: "r") === mailbox, "one mailbox per run")
        #expect(registry.heldCount == 1 && registry.allMailboxes.count == 1)
        #expect(registry.release("r") === mailbox)
        #expect(!registry.isHeld("r") && registry.existingMailbox("r") == nil)
        #expect(registry.hold("r"), "free again")
    }

    @Test func aWaiterReturnsAtOnceUnlessTheRunIsHeldWithoutAMailbox() async {
        let registry = RunRegistry()
        await registry.waitWhileHeldWithoutMailbox("free")
        _ = registry.hold("driven")
        _ = registry.mailbox(for: "driven")
        await registry.waitWhileHeldWithoutMailbox("driven")
    }

    @Test(arguments: ["unhold", "mailbox", "release"])
    func aWaiterIsWokenWhenTheHeldRunChangesHands(change: String) async throws {
        let registry = RunRegistry()
        #expect(registry.hold("r"))
        let woken = Flag()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await registry.waitWhileHeldWithoutMailbox("r")
                woken.value.store(true, ordering: .releasing)
            }
            // Nothing changed yet: the waiter still waits (it is woken by a change, not by time).
            try await waitFor("the waiter to be registered") { registry.waiterCount("r") == 1 }
            let early = woken.value.load(ordering: .acquiring)
            #expect(!early)
            switch change {
            case "unhold": registry.unhold("r")
            case "mailbox": _ = registry.mailbox(for: "r")
            default: _ = registry.release("r")
            }
            try await group.waitForAll()
        }
        let late = woken.value.load(ordering: .acquiring)
        #expect(late)
    }
}

final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
