import Foundation
import SkaldCore

/// The three-step saga the benchmark runs: reserve, charge, ship, each undone by a call of its own.
/// Each call renders the input and the previous step's response, as real sagas do.
enum BenchSaga {
    enum Shape: String {
        /// Every call answers 200 at once.
        case happy
        /// The third step answers 400: the two before it are compensated.
        case compensate
        /// Every call is held by the participant for a while before it answers.
        case hold
        /// The first call is held until the participant is told to release it (to leave runs in flight for a crash).
        case park
        /// The second call goes to a participant that has an outage; it is retried (up to 100 attempts, 2 s apart at most).
        case outage
        /// The same, with a circuit breaker on that participant.
        case outageBreaker = "outage-breaker"
        /// The second step is a callback step: the participant accepts it (202) and calls back 0–500 ms later.
        case callback
        /// The second step is a callback step whose participant never calls back (the runs wait, parked).
        case callbackNever = "callback-never"
        /// The second step sleeps an hour (the runs wait, parked).
        case sleeping
    }

    static func definition(participant base: String, shape: Shape, holdMilliseconds: Int = 1000) -> SagaDefinition {
        let names = ["reserve", "charge", "ship"]
        var steps: [String] = []
        for (index, name) in names.enumerated() {
            let path: String
            switch shape {
            case .happy: path = "ok/\(name)"
            case .compensate: path = index == 2 ? "fail/\(name)" : "ok/\(name)"
            case .hold: path = "hold/\(name)?ms=\(holdMilliseconds)"
            case .park: path = index == 0 ? "park/\(name)" : "ok/\(name)"
            case .outage, .outageBreaker: path = index == 1 ? "flaky/\(name)" : "ok/\(name)"
            case .callback: path = index == 1 ? "callback/\(name)" : "ok/\(name)"
            case .callbackNever: path = index == 1 ? "callback/\(name)?never=1" : "ok/\(name)"
            case .sleeping: path = "ok/\(name)"
            }
            let waitsHere = index == 1 && Self.waits(shape)
            if waitsHere && shape == .sleeping {
                steps.append(#"{ "name": "\#(name)", "sleep": "1h" }"#)
                continue
            }
            let callback = waitsHere ? #""callback": { "timeout": "1h" }, "# : ""
            let notify = waitsHere ? #", "notify": "{{callback.url}}""# : ""
            let flaky = index == 1 && (shape == .outage || shape == .outageBreaker)
            let retry = flaky ? #", "retry": { "maxAttempts": 100, "initialInterval": "200ms", "maxInterval": "2s" }"# : ""
            let participant = flaky && shape == .outageBreaker ? #""participant": "payments", "# : ""
            let previous = index == 0 || (index == 2 && Self.waits(shape)) ? "" : #", "after": "{{steps.\#(names[index - 1]).response.body.id}}""#
            steps.append(
                #"""
                {
                  "name": "\#(name)", \#(participant)\#(callback)
                  "request": { "method": "POST", "url": "\#(base)/\#(path)", "body": { "order": "{{input.order}}", "amount": "{{input.amount}}"\#(previous)\#(notify) }\#(retry) },
                  "compensation": { "method": "POST", "url": "\#(base)/ok/\#(name)-undo", "body": { "id": "{{steps.\#(name).response.body.id}}" } }
                }
                """#)
        }
        // Opens when half of the last 20 calls failed; probes after 1 s, then 2 s, up to 4 s while they fail.
        let participants = #"""
             "participants": { "payments": { "circuitBreaker": { "windowCalls": 20, "minimumCalls": 10, "failureRate": 50, "openFor": "1s", "maxOpenFor": "4s" } } },
            """#
        let text = #"""
            {
              "name": "bench-\#(shape.rawValue)",
              "version": 1,
              "description": "The benchmark saga.",
              "defaults": { "timeout": "60s" },\#(shape == .outageBreaker ? participants : "")
              "steps": [\#(steps.joined(separator: ","))]
            }
            """#
        do {
            return try DefinitionParser.parse(Array(text.utf8), file: "bench-\(shape.rawValue).json")
        } catch {
            preconditionFailure("the benchmark saga does not validate: \(error)")
        }
    }

    /// The second step waits (its response is the 202, or none), so the third reads the first's.
    static func waits(_ shape: Shape) -> Bool { [.callback, .callbackNever, .sleeping].contains(shape) }

    static func input(_ number: Int) -> JSONValue {
        ["order": .string("order-\(number)"), "amount": .int(1999)]
    }
}
