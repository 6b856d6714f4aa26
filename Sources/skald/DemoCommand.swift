import ArgumentParser
import Foundation
import SkaldCore
import SkaldDemo
import SkaldEngine
import SkaldSQLite
import SkaldServer

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start built-in participant services (inventory, payments, shipping, hotels, flights, cars) on 127.0.0.1 and run the example sagas against them.",
        discussion: """
            Five checkouts: one that completes, one whose card is declined (HTTP 402, so the stock reservation is \
            released), one whose shipping service is flaky (503s, then success after backoff), one whose shipping \
            service hangs (no answer, so the shipment is cancelled in case it was booked, and refused when it comes \
            late), and one whose refund keeps failing (an honest compensation_failed). Then two trips: hotel, flight and car booked in parallel \
            before a pivot payment, and one where no car is available, so hotel and flight are cancelled at once. Then, \
            four checkouts while payments is down, with a circuit breaker that opens, holds the retries back and closes; \
            two payments a provider confirms by webhook (a callback step); and two refunds that wait for a manager's \
            approval (one approved, one rejected). With --serve, only start the services and print their URLs.
            """)

    @Option(name: .long, help: "The database file (default: a new file in a temporary folder).")
    var db: String?

    @Option(name: .long, help: "Where the example sagas are (default: Sagas; the embedded copies are used if it is missing).")
    var sagas: String = "Sagas"

    @Flag(name: .long, help: "Only start the participant services, print their URLs, and wait for Ctrl-C.")
    var serve = false

    @Option(name: .long, help: "With --serve: the first of six consecutive ports (default: any free ports).")
    var port: Int?

    func validate() throws {
        let count = Participant.Kind.allCases.count
        if let port, !(1...(65535 - count + 1)).contains(port) {
            throw ValidationError("--port must be from 1 to \(65535 - count + 1): the demo's \(count) participants take \(count) consecutive ports from it")
        }
    }

    func run() async throws {
        var ports: [Participant.Kind: Int] = [:]
        if let port {
            for (offset, kind) in Participant.Kind.allCases.enumerated() { ports[kind] = port + offset }
        }
        let serve = serve
        let sagasFolder = sagas
        let dbPath = db
        try await Participant.withRunning(ports: ports) { participants in
            if serve {
                Self.printServing(participants)
                while true { try await Task.sleep(for: .seconds(3600)) }
            }
            try await Self.story(participants, sagasFolder: sagasFolder, dbPath: dbPath)
        }
    }

    static func printServing(_ participants: RunningParticipants) {
        print("Participant services on 127.0.0.1 (Ctrl-C to stop). In another terminal:\n")
        for kind in Participant.Kind.allCases {
            print("  export \(kind.environmentName)=\(participants.urls[kind]!)")
        }
        print("\n  (six ports from --port: inventory, payments, shipping, hotels, flights, cars)")
        print("""

              skald run Sagas/checkout.json --input @Sagas/inputs/checkout.json

            Each service honours Idempotency-Key and can be told to misbehave, for example:
              curl -X POST \(participants.urls[.shipping]!)/_control -d '{"failNext": 2}'
              curl -X POST \(participants.urls[.payments]!)/_control -d '{"reject": true}'
            Fields: reject, failNext, failCompensations, delay ("2s"), hold (apply, then hold the answer), stall (hold
            forward requests before applying them); {} releases what is held. GET /_ledger lists what was applied.
            """)
        fflush(nil)
    }

    static func story(_ participants: RunningParticipants, sagasFolder: String, dbPath: String?) async throws {
        let style = ProgressPrinter.Style.forStandardOutput
        func load(_ name: String) throws -> (SagaDefinition, String) {
            guard let (text, source) = DemoSagas.text(name, folder: sagasFolder) else { throw ValidationError("cannot find \(name)") }
            do {
                return (try DefinitionParser.parse(Array(text.utf8), file: source), source)
            } catch {
                for line in error.lines { printError(line) }
                throw Exit.invalid
            }
        }
        let (saga, source) = try load("checkout.json")
        let (trip, tripSource) = try load("trip.json")
        let path = try dbPath ?? temporaryDatabasePath()
        let store = try SQLiteStore(path: path)
        let lock = try EngineLock(databasePath: path)
        defer { withExtendedLifetime(lock) {} }

        print(style.bold("Skald demo"))
        print("""
            The saga \(saga.name) (\(source)) reserves stock, charges a card and books shipping.
            Each step declares the call that undoes it. Three small services play the participants:
            """)
        for kind in [Participant.Kind.inventory, .payments, .shipping] {
            print("  \(kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(participants.urls[kind]!)")
        }
        print("Every state change is committed to \(path) before Skald acts on it.\n")

        let printer = ProgressPrinter(style: style, indent: "    ", stepNames: (saga.steps + trip.steps).map(\.name))
        var environment = ProcessInfo.processInfo.environment
        environment.merge(participants.environment) { _, demo in demo }

        struct Scenario {
            var title: String
            var setup: String
            var card: String = "4242424242424242"
            var faults: [Participant.Kind: Faults] = [:]
            var isTrip = false
            /// A participant whose stalled requests are let go once the run has ended.
            var wakes: Participant.Kind?
        }
        let scenarios = [
            Scenario(title: "A checkout that completes", setup: "All three services answer at once."),
            Scenario(
                title: "The card is declined",
                setup: "The card is \(Participant.decliningCard), which payments declines with HTTP 402. A 4xx is not retried: the reservation made before it is released.",
                card: Participant.decliningCard),
            Scenario(
                title: "Shipping is flaky",
                setup: "Shipping answers the next 2 requests with 503. A 5xx is retried with exponential backoff and jitter; the same Idempotency-Key goes with every attempt.",
                faults: [.shipping: Faults(failNext: 2)]),
            Scenario(
                title: "Shipping hangs",
                setup: "Shipping takes the request but never answers. After its last attempt times out, Skald cannot know whether the parcel was booked, so it undoes ship-order too, naming it by its idempotency key, then the charge and the reservation.",
                faults: [.shipping: Faults(stall: true)], wakes: .shipping),
            Scenario(
                title: "Shipping refuses, and refunds are down",
                setup: "Shipping rejects the address (422) and payments fails every refund (500). Skald retries the refund, then stops in compensation_failed and says which step needs a person.",
                faults: [.shipping: Faults(reject: true), .payments: Faults(failCompensations: true)]),
            Scenario(
                title: "A trip, booked in parallel",
                setup: "\(tripSource): hotel, flight and car are booked at the same time; the payment waits for all three and is the pivot.",
                isTrip: true),
            Scenario(
                title: "No car for those dates",
                setup: "Cars answers 409, which this saga retries (retryOn) for at most 5s (maxElapsed). Then the hotel and the flight are cancelled at the same time.",
                faults: [.cars: Faults(reject: true)], isTrip: true),
        ]

        var outcomes: [RunStatus] = []
        try await EngineHost.with(store: store, maxResponseBytes: 1 << 20, environment: environment, printer: printer) { engine in
            for (number, scenario) in scenarios.enumerated() {
                for kind in Participant.Kind.allCases { await participants[kind].setFaults(scenario.faults[kind] ?? Faults()) }
                print(style.bold("\(number + 1). \(scenario.title)"))
                print("   \(scenario.setup)")
                let started = ContinuousClock.now
                let runID = scenario.isTrip
                    ? try await engine.startRun(trip, input: DemoSagas.tripInput(tripId: "trip-\(2001 + number)", card: scenario.card))
                    : try await engine.startRun(saga, input: DemoSagas.checkoutInput(orderId: "order-\(1001 + number)", card: scenario.card))
                print("   run \(runID)")
                let state = try await engine.drive(runID: runID)
                print("   → \(printer.summary(state, elapsed: ContinuousClock.now - started))")
                if let kind = scenario.wakes {
                    let participant = participants[kind]
                    let refusedBefore = await participant.refusedAfterUndo
                    await participant.setFaults(Faults())
                    await participant.releaseHeld()
                    // The released requests are answered at once; wait for the first (bounded, in case of a bug).
                    for _ in 0..<100 where await participant.refusedAfterUndo == refusedBefore { try await Task.sleep(for: .milliseconds(20)) }
                    let refused = await participant.refusedAfterUndo - refusedBefore
                    print("   \(kind.rawValue) wakes up: the held shipment request comes after its cancellation, so \(kind.rawValue) refuses it (409)\(refused == 0 ? "" : ", \(refused) time\(refused == 1 ? "" : "s")"): nothing was shipped.")
                }
                print("")
                outcomes.append(state.status)
            }
        }
        for kind in Participant.Kind.allCases { await participants[kind].setFaults(Faults()) }
        outcomes += try await breakerScene(
            number: scenarios.count + 1, saga: saga, participants: participants, store: store, environment: environment, style: style)
        let (webhook, webhookSource) = try load("payment-webhook.json")
        outcomes += try await webhookScene(
            number: scenarios.count + 2, saga: webhook, source: webhookSource, store: store, environment: environment, style: style)
        let (refund, refundSource) = try load("refund.json")
        outcomes += try await approvalScene(
            number: scenarios.count + 3, saga: refund, source: refundSource, store: store, environment: environment, style: style)

        let (orderItems, orderItemsSource) = try load("order-items.json")
        outcomes += try await itemsScene(
            number: scenarios.count + 4, saga: orderItems, source: orderItemsSource, store: store, environment: environment, style: style)

        print(style.bold("What the participants applied"))
        print("  (each line is what one service did; retries and replays of a key are not applied twice)")
        var repeated = 0
        for kind in Participant.Kind.allCases {
            let ledger = await participants[kind].ledger
            let perKey = await participants[kind].applicationsPerKey
            repeated += perKey.values.filter { $0 > 1 }.count
            let actions = Dictionary(grouping: ledger, by: \.action).map { "\($0.value.count) \($0.key)" }.sorted()
            let requests = await participants[kind].requestCount
            print("  \(kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(requests) requests, applied: \(actions.isEmpty ? "nothing" : actions.joined(separator: ", "))")
        }
        print(repeated == 0
            ? "  Every action was applied once per idempotency key, retries included."
            : style.red("  \(repeated) idempotency keys were applied more than once!"))
        print("""

            Outcomes: \(outcomes.map(\.rawValue).joined(separator: ", ")).
            Try it yourself: `skald demo --serve` keeps the services up; `skald run Sagas/checkout.json --input @Sagas/inputs/checkout.json`
            runs the saga against them. Kill it with kill -9 at any point, then `skald resume` carries on.
            As a service: `skald serve --sagas Sagas`, then `skald start checkout --input @Sagas/inputs/checkout.json --watch`.
            """)
    }

    /// Four checkouts while payments is down for three seconds, with a circuit breaker on payments: the first
    /// refusals open it, the retries wait instead of using up their attempts, and a probe closes it once payments
    /// is back. Without the breaker the four would spend their four attempts in the outage and be undone.
    static func breakerScene(
        number: Int, saga: SagaDefinition, participants: RunningParticipants, store: SQLiteStore, environment: [String: String],
        style: ProgressPrinter.Style
    ) async throws -> [RunStatus] {
        let breaker = CircuitBreakerSettings(window: .calls(10), minimumCalls: 4, failureRate: 50, openFor: .seconds(2), maxOpenFor: .seconds(2))
        let settings = ParticipantSettings(baseURL: participants.urls[.payments]!, circuitBreaker: breaker)
        print(style.bold("\(number). Payments goes down; a circuit breaker holds the retries back"))
        print("""
               Payments answers 503 to everything for 3 seconds while four checkouts run. The participant "payments"
               (set server-wide, as `skald serve --participants Sagas/participants/demo.json` does) has a circuit breaker:
               \(breaker.summary).
               Once it is open, retries are neither sent nor counted: each run waits for the probe.
            """)
        let payments = participants[.payments]
        await payments.setFaults(Faults(failNext: 1_000_000))
        let before = await payments.requestCount
        let printer = ProgressPrinter(style: style, indent: "    ", showRunID: true, stepNames: saga.steps.map(\.name))
        let started = ContinuousClock.now
        let states = try await EngineHost.with(
            store: store, maxResponseBytes: 1 << 20, environment: environment, participants: ["payments": settings], printer: printer
        ) { engine in
            var ids: [String] = []
            for order in 0..<4 {
                ids.append(try await engine.startRun(saga, input: DemoSagas.checkoutInput(orderId: "order-\(2001 + order)", card: "4242424242424242")))
            }
            return try await withThrowingTaskGroup(of: RunState?.self) { group in
                for id in ids { group.addTask { try await engine.drive(runID: id) } }
                group.addTask {
                    // The outage: payments comes back after three seconds (the demo's own pace, not Skald's).
                    try await Task.sleep(for: .seconds(3))
                    let during = await payments.requestCount - before
                    await payments.setFaults(Faults())
                    let opened = engine.participants.statuses().first?.timesOpened ?? 0
                    print("    payments is back after 3s; it got \(during) calls while down, and its circuit opened \(opened) time\(opened == 1 ? "" : "s")")
                    return nil
                }
                var states: [RunState] = []
                for try await state in group { if let state { states.append(state) } }
                return states
            }
        }
        let elapsed = ContinuousClock.now - started
        for state in states.sorted(by: { $0.id < $1.id }) {
            print("   \(String(state.id.suffix(8))) → \(printer.summary(state, elapsed: elapsed))")
        }
        let used = states.map { $0.steps[1].attempts }.max() ?? 0
        print("   Each run used at most \(used) of charge-card's 4 attempts; the waits used none.\n")
        return states.map(\.status)
    }

    /// Two payments a provider confirms by webhook: the demo serves Skald's API on 127.0.0.1 for the callbacks, payments
    /// accepts each (202) and posts the result to the step's callback URL a moment later: one taken, one declined.
    static func webhookScene(
        number: Int, saga: SagaDefinition, source: String, store: SQLiteStore, environment: [String: String], style: ProgressPrinter.Style
    ) async throws -> [RunStatus] {
        print(style.bold("\(number). A payment confirmed by webhook"))
        print("""
               \(source): payments answers 202 Accepted and posts the result to the step's {{callback.url}} about 300ms
               later, from its own task. The step waits for that callback (not a failed attempt); the callback's output
               (the payment id) is what ship-order sends. A declined card calls back "failed": the reservation is released.
            """)
        let printer = ProgressPrinter(style: style, indent: "    ", stepNames: saga.steps.map(\.name))
        return try await EngineHost.with(store: store, maxResponseBytes: 1 << 20, environment: environment, printer: printer) { engine in
            // The callback URL's server: Skald's own API, as skald serve would serve it.
            try await LoopbackServers.withRunning([buildRouter(engine: engine, store: store)]) { ports in
                engine.setPublicURL("http://127.0.0.1:\(ports[0])")
                print("   callbacks to http://127.0.0.1:\(ports[0])/v1/callbacks/TOKEN")
                var outcomes: [RunStatus] = []
                for (orderId, card) in [("order-4001", "4242424242424242"), ("order-4002", Participant.decliningCard)] {
                    let started = ContinuousClock.now
                    let runID = try await engine.startRun(saga, input: DemoSagas.checkoutInput(orderId: orderId, card: card))
                    print("   run \(runID): \(orderId)")
                    let state = try await engine.drive(runID: runID)
                    print("   → \(printer.summary(state, elapsed: ContinuousClock.now - started))\n")
                    outcomes.append(state.status)
                }
                return outcomes
            }
        }
    }

    /// Two refunds that wait for a manager: one approved (a short sleep, then the card is credited), one rejected (the
    /// courier pickup booked before it is cancelled). The demo plays the manager, as `skald approve` would.
    static func approvalScene(
        number: Int, saga: SagaDefinition, source: String, store: SQLiteStore, environment: [String: String], style: ProgressPrinter.Style
    ) async throws -> [RunStatus] {
        print(style.bold("\(number). Refunds that wait for a manager"))
        print("""
               \(source): book the courier pickup, then wait for a person to approve the refund (a step with "approval": nothing
               is sent while it waits, and a server parks the run as a row in its database), sleep a moment, then credit the card.
               On a server a manager decides with `skald approve RUN approve-refund --note …`, the API or the console; here the
               demo decides.
            """)
        let printer = ProgressPrinter(style: style, indent: "    ", stepNames: saga.steps.map(\.name))
        var outcomes: [RunStatus] = []
        try await EngineHost.with(store: store, maxResponseBytes: 1 << 20, environment: environment, printer: printer) { engine in
            for (orderId, amount, reason, approve) in [("order-3001", 620.0, "arrived broken", true), ("order-3002", 4_900.0, "changed my mind", false)] {
                let started = ContinuousClock.now
                let runID = try await engine.startRun(saga, input: DemoSagas.refundInput(orderId: orderId, amount: amount, reason: reason))
                print("   run \(runID): \(orderId), \(amount) EUR")
                let drive = Task { try await engine.drive(runID: runID) }
                // The demo's own pace: look until the run waits for its manager.
                var prompt: String?
                while prompt == nil {
                    let step = try await store.run(id: runID)?.state.steps[1]
                    if step?.status == .waiting { prompt = step?.wait?.prompt ?? "" } else if step?.status != .pending && step?.status != .running { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                if prompt != nil {
                    let note = approve ? "receipt checked" : "over the refund limit; offer a voucher"
                    print("    the manager \(approve ? "approves" : "rejects") it: skald \(approve ? "approve" : "reject") \(runID) approve-refund --note \"\(note)\"")
                    _ = try await engine.decide(runID: runID, step: "approve-refund", approve: approve, note: note, by: "manager")
                }
                let state = try await drive.value
                print("   → \(printer.summary(state, elapsed: ContinuousClock.now - started))\n")
                outcomes.append(state.status)
            }
        }
        return outcomes
    }

    /// Two orders of three items each, reserved one call per item: one all in stock, one with an item inventory does
    /// not have, so the two reservations made for it are released, each by its own key, and the card is never charged.
    static func itemsScene(
        number: Int, saga: SagaDefinition, source: String, store: SQLiteStore, environment: [String: String], style: ProgressPrinter.Style
    ) async throws -> [RunStatus] {
        print(style.bold("\(number). An order of several items"))
        print("""
               \(source): "forEach": "{{input.items}}" makes the reservation once per item, up to 4 at a time. Each item is
               a step of its own (reserve-items[0], [1], …) with its own attempts and Idempotency-Key (RUN:reserve-items[1]:forward).
               The second order has \(Participant.soldOutSKU), which inventory refuses (409): the other two items are released,
               each by its own key, and the card is never charged.
            """)
        let printer = ProgressPrinter(style: style, indent: "    ", stepNames: saga.steps.map(\.name) + ["reserve-items[0]"])
        var outcomes: [RunStatus] = []
        try await EngineHost.with(store: store, maxResponseBytes: 1 << 20, environment: environment, printer: printer) { engine in
            for (orderId, skus) in [("order-5001", ["SKU-APPLE", "SKU-PEAR", "SKU-PLUM"]), ("order-5002", ["SKU-APPLE", Participant.soldOutSKU, "SKU-PEAR"])] {
                let started = ContinuousClock.now
                let runID = try await engine.startRun(saga, input: DemoSagas.orderItemsInput(orderId: orderId, skus: skus))
                print("   run \(runID): \(orderId), \(skus.joined(separator: ", "))")
                let state = try await engine.drive(runID: runID)
                print("   → \(printer.summary(state, elapsed: ContinuousClock.now - started))\n")
                outcomes.append(state.status)
            }
        }
        return outcomes
    }

    static func temporaryDatabasePath() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("skald-demo-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent("skald.sqlite").path
    }
}
