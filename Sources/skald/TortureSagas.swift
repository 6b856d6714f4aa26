import Foundation

/// The torture sagas: a chain with a compensation on every step, and a graph with parallel steps and a pivot.
enum TortureSagas {
    static let retry = #""retry": {"maxAttempts": 8, "initialInterval": "20ms", "maxInterval": "200ms", "jitter": "full"}"#
    static let compensationRetry = #""compensationRetry": {"maxAttempts": 3, "initialInterval": "20ms", "maxInterval": "100ms", "jitter": "none"}"#

    static func call(_ step: String, method: String, notify: Bool = false) -> String {
        let callback = notify ? #", "notify": "{{callback.url}}""# : ""
        return #"{"method": "\#(method)", "url": "{{env.TORTURE_URL}}/steps/\#(step)", "body": {"mode": "{{input.mode}}", "fail": "{{input.fail}}"\#(callback)}}"#
    }

    static func step(_ name: String, dependsOn: [String]? = nil, pivot: Bool = false, compensated: Bool = true, callback: Bool = false) -> String {
        var fields = [#""name": "\#(name)""#, #""request": \#(call(name, method: "POST", notify: callback))"#]
        if callback { fields.append(#""callback": {"timeout": "60s"}"#) }
        if compensated { fields.append(#""compensation": \#(call(name, method: "DELETE"))"#) }
        if let dependsOn { fields.append(#""dependsOn": [\#(dependsOn.map { "\"\($0)\"" }.joined(separator: ", "))]"#) }
        if pivot { fields.append(#""pivot": true"#) }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// A step that calls once per item of the input's three items, two at a time.
    static func items(_ name: String) -> String {
        step(name).replacingOccurrences(of: #"{"name": "\#(name)", "#, with: #"{"name": "\#(name)", "forEach": "{{input.items}}", "maxConcurrency": 2, "#)
    }

    static func saga(_ name: String, _ steps: [String]) -> String {
        #"{"name": "\#(name)", "version": 1, "defaults": {"timeout": "300ms", \#(retry), \#(compensationRetry)}, "steps": [\#(steps.joined(separator: ", "))]}"#
    }

    static let all: [(String, String)] = [
        ("torture-chain", saga("torture-chain", [step("a"), step("b"), step("c")])),
        (
            "torture-graph",
            saga(
                "torture-graph",
                [
                    step("a", dependsOn: []), step("b1", dependsOn: ["a"]), step("b2", dependsOn: ["a"]),
                    step("p", dependsOn: ["b1", "b2"], pivot: true, compensated: false), step("d", dependsOn: ["p"], compensated: false),
                ])
        ),
        ("torture-callback", saga("torture-callback", [step("a"), step("b", callback: true), step("c")])),
        (
            "torture-decide",
            saga(
                "torture-decide",
                [
                    step("a"),
                    step("b").replacingOccurrences(
                        of: #"{"name": "b", "#, with: #"{"name": "b", "when": {"not": {"value": "{{input.mode}}", "equals": "skip"}}, "#),
                    step("c").replacingOccurrences(
                        of: #"{"name": "c", "#,
                        with: #"{"name": "c", "failWhen": {"value": "{{steps.c.response.body.refused}}", "equals": true}, "retryWhen": {"value": "{{steps.c.response.body.pending}}", "equals": true}, "#),
                ])
        ),
        ("torture-items", saga("torture-items", [step("a"), items("items"), step("c")])),
        // A parent whose middle step runs torture-kid as a child (with the parent's mode), and the child.
        ("torture-kid", saga("torture-kid", [step("x"), step("y")])),
        (
            "torture-nest",
            saga(
                "torture-nest",
                [step("a"), #"{"name": "kid", "saga": {"name": "torture-kid", "input": {"mode": "{{input.mode}}", "fail": "{{input.fail}}"}}}"#, step("c")])
        ),
    ]

    /// Each saga's steps and, for each, the steps it depends on (directly or not) and whether it comes after the pivot.
    static let graph: [String: (steps: [String], dependsOn: [String: Set<String>], afterPivot: Set<String>)] = [
        "torture-chain": (["a", "b", "c"], ["a": [], "b": ["a"], "c": ["a", "b"]], []),
        "torture-graph": (["a", "b1", "b2", "p", "d"], ["a": [], "b1": ["a"], "b2": ["a"], "p": ["a", "b1", "b2"], "d": ["a", "b1", "b2", "p"]], ["p", "d"]),
        "torture-callback": (["a", "b", "c"], ["a": [], "b": ["a"], "c": ["a", "b"]], []),
        "torture-decide": (["a", "b", "c"], ["a": [], "b": ["a"], "c": ["a", "b"]], []),
        // The child step calls nothing itself: its child run's steps are checked as a run of torture-kid.
        "torture-nest": (["a", "c"], ["a": [], "c": ["a"]], []),
        "torture-kid": (["x", "y"], ["x": [], "y": ["x"]], []),
        // The forEach step's items are the steps the participant sees (the step itself sends nothing).
        "torture-items": (
            ["a", "items[0]", "items[1]", "items[2]", "c"],
            ["a": [], "items[0]": ["a"], "items[1]": ["a"], "items[2]": ["a"], "c": ["a", "items[0]", "items[1]", "items[2]"]], []
        ),
    ]
}
