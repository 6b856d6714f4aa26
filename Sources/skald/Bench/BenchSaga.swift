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
            }
            let previous = index == 0 ? "" : #", "after": "{{steps.\#(names[index - 1]).response.body.id}}""#
            steps.append(
                #"""
                {
                  "name": "\#(name)",
                  "request": { "method": "POST", "url": "\#(base)/\#(path)", "body": { "order": "{{input.order}}", "amount": "{{input.amount}}"\#(previous) } },
                  "compensation": { "method": "POST", "url": "\#(base)/ok/\#(name)-undo", "body": { "id": "{{steps.\#(name).response.body.id}}" } }
                }
                """#)
        }
        let text = #"""
            {
              "name": "bench-\#(shape.rawValue)",
              "version": 1,
              "description": "The benchmark saga.",
              "defaults": { "timeout": "60s" },
              "steps": [\#(steps.joined(separator: ","))]
            }
            """#
        do {
            return try DefinitionParser.parse(Array(text.utf8), file: "bench-\(shape.rawValue).json")
        } catch {
            preconditionFailure("the benchmark saga does not validate: \(error)")
        }
    }

    static func input(_ number: Int) -> JSONValue {
        ["order": .string("order-\(number)"), "amount": .int(1999)]
    }
}
