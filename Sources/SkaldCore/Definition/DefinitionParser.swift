import Foundation
/// Turns a JSON document into a validated `SagaDefinition`, collecting every problem instead of stopping at the first.
public struct DefinitionParser {
    public static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    /// Headers that Skald sets on every call; a definition may not set them.
    public static let reservedHeaders = ["idempotency-key", "skald-run", "skald-step", "skald-attempt", "skald-phase", "content-length", "host"]

    static let sagaFields = ["$schema", "name", "version", "description", "deadline", "defaults", "inputSchema", "participants", "steps"]
    static let defaultsFields = ["timeout", "retry", "compensationRetry"]
    /// The most steps a saga may have. Real sagas have a handful; the bound keeps validation, planning and the
    /// dependency graph (whose closure grows with the square of the steps) cheap for any definition.
    public static let maximumSteps = 256
    static let stepFields = ["name", "dependsOn", "pivot", "participant", "request", "compensation", "compensateUnknown"]
    static let callFields = [
        "method", "url", "headers", "secretHeaders", "body", "timeout", "retry", "maxElapsed", "successStatus", "retryOn", "failOn",
    ]
    static let retryFields = ["maxAttempts", "initialInterval", "backoffCoefficient", "maxInterval", "jitter"]

    public static let maximumAttempts = 100
    public static let maximumTimeout: Duration = .seconds(15 * 60)
    public static let maximumInterval: Duration = .seconds(3600)
    public static let maximumDeadline: Duration = .seconds(30 * 86_400)

    var problems: [DefinitionProblem] = []
    /// The participants the saga declares, once read.
    var participants: [String: ParticipantSettings] = [:]
    /// Every participant name the saga declares, those with bad settings too (their steps are not reported again).
    var participantNames: Set<String> = []
    private let locations: [JSONPath: SourceLocation]
    private var dependencies: [[Int]] = []
    private var usesDependsOn = false
    private var pivot: Int?
    /// The calls of steps that could not be built, as far as they parsed, so that their templates are checked
    /// too: every problem is reported at once, not the template ones only after the structure is fixed.
    private var unbuiltCalls: [(step: Int, path: JSONPath, includingOwn: Bool, call: CallDefinition)] = []
    /// What the last `call` parsed when it could not build the call.
    private var partialCall: CallDefinition?
    private var deadline: Duration?
    /// Every step in the file was built (so a step's position in `steps` is its position in the file).
    private var stepsComplete = false
    /// The saga as far as it could be read, when it has problems: its warnings are shown with them.
    var partial: SagaDefinition?

    init(locations: [JSONPath: SourceLocation]) {
        self.locations = locations
    }

    /// Parses and validates the bytes of a definition file.
    public static func parse(_ bytes: [UInt8], file: String? = nil) throws(DefinitionError) -> SagaDefinition {
        let document: JSONParser.Document
        do {
            document = try JSONParser.parse(bytes, options: .init(recordsLocations: true, rejectsDuplicateKeys: true))
        } catch {
            throw DefinitionError(
                file: file,
                problems: [DefinitionProblem(path: nil, location: error.location, message: "malformed JSON: \(error.message)")])
        }
        return try parse(document.value, locations: document.locations, file: file)
    }

    /// Validates a definition that is already a JSON value (for example one posted to the API).
    public static func parse(_ document: JSONValue, locations: [JSONPath: SourceLocation] = [:], file: String? = nil)
        throws(DefinitionError) -> SagaDefinition
    {
        var parser = DefinitionParser(locations: locations)
        let saga = parser.saga(document)
        if let saga, parser.problems.isEmpty { return saga }
        // The warnings of what could be read, with the errors, so that a fix does not bring new surprises.
        let warnings = ((saga ?? parser.partial)?.warnings ?? []).map { warning in
            var located = warning
            if let path = warning.path { located.location = parser.location(of: path) }
            return located
        }
        // In file order, as a person reads them.
        let ordered = parser.problems.enumerated().sorted { lhs, rhs in
            let l = lhs.element.location.map { ($0.line, $0.column) } ?? (Int.max, Int.max)
            let r = rhs.element.location.map { ($0.line, $0.column) } ?? (Int.max, Int.max)
            return l != r ? l < r : lhs.offset < rhs.offset
        }
        throw DefinitionError(file: file, problems: ordered.map(\.element), warnings: warnings)
    }

    /// Where `path` (or its nearest recorded ancestor) is in the file.
    func location(of path: JSONPath) -> SourceLocation? {
        var located = path
        var location = locations[located]
        while location == nil, !located.components.isEmpty {
            located.components.removeLast()
            location = locations[located]
        }
        return location
    }

    // MARK: - Reporting

    mutating func report(_ path: JSONPath, _ message: String) {
        problems.append(DefinitionProblem(path: path, location: location(of: path), message: message))
    }

    /// Reads an object, reporting a wrong type and every unknown key.
    mutating func object(_ value: JSONValue, at path: JSONPath, allowed: [String], what: String) -> [String: JSONValue]? {
        guard case .object(let members) = value else {
            report(path, "\(what) must be an object, but it is \(value.typeName)")
            return nil
        }
        for key in members.keys.sorted() where !allowed.contains(key) {
            report(
                path.appending(key),
                "unknown field \"\(key)\"\(Suggestion.didYouMean(key, in: allowed)); the fields allowed here are \(allowed.filter { $0 != "$schema" }.joined(separator: ", "))"
            )
        }
        return members
    }

    mutating func string(_ members: [String: JSONValue], _ key: String, at path: JSONPath, required: Bool, hint: String)
        -> String?
    {
        guard let value = members[key] else {
            if required { report(path, "\"\(key)\" is required: \(hint)") }
            return nil
        }
        guard case .string(let s) = value else {
            report(path.appending(key), "\"\(key)\" must be a string, but it is \(value.typeName): \(hint)")
            return nil
        }
        return s
    }

    mutating func duration(_ members: [String: JSONValue], _ key: String, at path: JSONPath, maximum: Duration)
        -> Duration?
    {
        guard let value = members[key] else { return nil }
        let fieldPath = path.appending(key)
        let notADuration = "\(value.jsonText) is not a duration; write a number and a unit (ms, s, m, h or d), for example \"250ms\", \"5s\" or \"1m30s\""
        guard case .string(let text) = value else {
            report(fieldPath, notADuration)
            return nil
        }
        let duration: Duration
        switch DurationText.check(text) {
        case .success(let parsed):
            duration = parsed
        case .failure(.tooLong):
            report(fieldPath, "\"\(key)\" is \(text), longer than the limit of \(DurationText.format(maximum)); use a shorter duration")
            return nil
        case .failure(.notADuration):
            report(fieldPath, notADuration)
            return nil
        }
        guard duration > .zero else {
            report(fieldPath, "\"\(key)\" must be longer than zero")
            return nil
        }
        guard duration <= maximum else {
            report(fieldPath, "\"\(key)\" is \(text), longer than the limit of \(DurationText.format(maximum)); use a shorter duration")
            return nil
        }
        return duration
    }

    // MARK: - Saga

    private mutating func saga(_ document: JSONValue) -> SagaDefinition? {
        guard case .object(let top) = document else {
            report(.root, "this file is not a saga definition: it holds \(document.typeName), but a saga is a JSON object with \"name\", \"version\" and \"steps\"")
            return nil
        }
        if top["name"] == nil, top["version"] == nil, top["steps"] == nil {
            let keys = top.keys.sorted().prefix(6).joined(separator: ", ")
            report(.root, "this file is not a saga definition: it has none of \"name\", \"version\" and \"steps\"\(keys.isEmpty ? "" : " (its fields are \(keys))"); see Sagas/checkout.json for an example")
            return nil
        }
        guard let members = object(document, at: .root, allowed: Self.sagaFields, what: "a saga") else { return nil }

        let name = string(members, "name", at: .root, required: true, hint: "give the saga a name such as \"checkout\"")
        if let name, !Self.isValidName(name) {
            report(JSONPath.root.appending("name"), "\"\(name)\" is not a valid saga name; use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        var version: Int?
        if let value = members["version"] {
            if let v = value.intValue, v >= 1, v <= Int64(Int32.max) {
                version = Int(v)
            } else {
                report(JSONPath.root.appending("version"), "\"version\" must be a whole number of at least 1, but it is \(value.jsonText); bump it whenever the saga changes")
            }
        } else {
            report(.root, "\"version\" is required: give a whole number such as 1, and bump it whenever the saga changes")
        }
        let description = string(members, "description", at: .root, required: false, hint: "describe the saga in a sentence")
        deadline = duration(members, "deadline", at: .root, maximum: Self.maximumDeadline)

        var forwardRetry = RetryPolicy.forwardDefault
        var compensationRetry = RetryPolicy.compensationDefault
        var timeout = RetryPolicy.defaultTimeout
        if let defaultsValue = members["defaults"] {
            let path = JSONPath.root.appending("defaults")
            if let defaults = object(defaultsValue, at: path, allowed: Self.defaultsFields, what: "\"defaults\"") {
                timeout = duration(defaults, "timeout", at: path, maximum: Self.maximumTimeout) ?? timeout
                if let retry = defaults["retry"] {
                    forwardRetry = retryPolicy(retry, at: path.appending("retry"), base: forwardRetry) ?? forwardRetry
                }
                if let retry = defaults["compensationRetry"] {
                    compensationRetry = retryPolicy(retry, at: path.appending("compensationRetry"), base: compensationRetry) ?? compensationRetry
                }
            }
        }

        var inputSchema: InputSchema?
        if let schemaValue = members["inputSchema"] {
            inputSchema = schema(schemaValue, at: JSONPath.root.appending("inputSchema"))
        }

        if let value = members["participants"] {
            participants = participantsSection(value, at: JSONPath.root.appending("participants"), serverWide: false)
        }

        var steps: [StepDefinition] = []
        let stepsPath = JSONPath.root.appending("steps")
        switch members["steps"] {
        case nil:
            report(.root, "\"steps\" is required: list the saga's HTTP calls in order, each with a \"name\" and a \"request\"")
        case .array(let items)? where items.count > Self.maximumSteps:
            report(
                stepsPath,
                "\"steps\" has \(items.count) steps, over the limit of \(Self.maximumSteps); split the saga, or start one saga from another's step")
        case .array(let items)?:
            if items.isEmpty { report(stepsPath, "\"steps\" is empty; a saga needs at least one step") }
            var firstUse: [String: Int] = [:]
            var parsed: [(index: Int, step: StepDefinition)] = []
            for (index, item) in items.enumerated() {
                let path = stepsPath.appending(index)
                if let name = item["name"]?.stringValue {
                    if let earlier = firstUse[name] {
                        report(path.appending("name"), "the step name \"\(name)\" is already used by steps[\(earlier)]; give every step a unique name")
                    } else {
                        firstUse[name] = index
                    }
                }
                guard let step = step(item, at: path, index: index, timeout: timeout, forwardRetry: forwardRetry, compensationRetry: compensationRetry)
                else { continue }
                parsed.append((index, step))
            }
            // References are checked even when other steps have problems, against every step name in the file.
            let names = items.map { $0["name"]?.stringValue ?? "" }
            usesDependsOn = items.contains { $0["dependsOn"] != nil }
            let graph = dependencyGraph(items, names: names)
            dependencies = graph.direct
            checkReferences(parsed, names: names, reachable: graph.transitive, inputSchema: inputSchema)
            for unbuilt in unbuiltCalls {
                checkCall(
                    unbuilt.call, at: unbuilt.path, stepIndex: unbuilt.step, includingOwn: unbuilt.includingOwn, names: names,
                    earlier: graph.transitive?[unbuilt.step], inputSchema: inputSchema)
            }
            if parsed.count == items.count, let closure = graph.transitive {
                pivot = checkPivot(parsed.map(\.step), closure: closure)
            }
            steps = parsed.map(\.step)
            stepsComplete = parsed.count == items.count
        case let other?:
            report(stepsPath, "\"steps\" must be an array of steps, but it is \(other.typeName)")
        }

        guard let name, let version, problems.isEmpty else {
            // What could be read, for the warnings shown with the errors (its steps, schema and pivot are all they read).
            if stepsComplete { partial = SagaDefinition(
                name: name ?? "", version: version ?? 1, description: description, inputSchema: inputSchema, steps: steps,
                dependencies: [], pivot: pivot, deadline: deadline, participants: participants, document: .null) }
            return nil
        }
        return SagaDefinition(
            name: name, version: version, description: description, inputSchema: inputSchema, steps: steps,
            dependencies: dependencies, pivot: pivot, deadline: deadline, participants: participants, document: document)
    }

    // MARK: - Dependencies

    /// Each step's direct dependencies (`dependsOn`, or the step before it in file order when absent) and,
    /// when there is no cycle, the steps each one depends on directly or through others.
    private mutating func dependencyGraph(_ items: [JSONValue], names: [String]) -> (direct: [[Int]], transitive: [Set<Int>]?) {
        var direct: [[Int]] = []
        for (index, item) in items.enumerated() {
            let path = JSONPath.root.appending("steps").appending(index).appending("dependsOn")
            guard let value = item["dependsOn"] else {
                direct.append(index == 0 ? [] : [index - 1])
                continue
            }
            guard case .array(let entries) = value else {
                report(path, "\"dependsOn\" must be an array of step names, for example [\"reserve-hotel\", \"reserve-flight\"]; [] starts the step at once")
                direct.append([])
                continue
            }
            var indexes: [Int] = []
            for (position, entry) in entries.enumerated() {
                let entryPath = path.appending(position)
                guard let dependency = entry.stringValue else {
                    report(entryPath, "each entry of \"dependsOn\" must be a step name, but this one is \(entry.typeName)")
                    continue
                }
                guard let target = names.firstIndex(of: dependency) else {
                    let known = names.filter { !$0.isEmpty }
                    report(entryPath, "\"\(dependency)\" is not a step of this saga\(Suggestion.didYouMean(dependency, in: known)); the steps are \(known.joined(separator: ", "))")
                    continue
                }
                if target == index {
                    report(entryPath, "a step cannot depend on itself; remove \"\(dependency)\"")
                } else if indexes.contains(target) {
                    report(entryPath, "\"\(dependency)\" is listed twice; list each dependency once")
                } else {
                    indexes.append(target)
                }
            }
            direct.append(indexes)
        }
        // Cycles: depth-first search, reporting each cycle once at the step that closes it.
        var state = [Int](repeating: 0, count: items.count)  // 0 new, 1 on the stack, 2 done
        var stack: [Int] = []
        var hasCycle = false
        func visit(_ node: Int) {
            state[node] = 1
            stack.append(node)
            for next in direct[node] {
                if state[next] == 1 {
                    let cycle = stack[stack.firstIndex(of: next)!...].map { names[$0] } + [names[next]]
                    report(
                        JSONPath.root.appending("steps").appending(node).appending("dependsOn"),
                        "the dependencies form a cycle: \(cycle.joined(separator: " waits for ")); a step can only wait for steps that do not wait for it")
                    hasCycle = true
                } else if state[next] == 0 {
                    visit(next)
                }
            }
            stack.removeLast()
            state[node] = 2
        }
        for node in direct.indices where state[node] == 0 { visit(node) }
        guard !hasCycle else { return (direct, nil) }
        return (direct, Self.transitiveClosure(direct))
    }

    /// For each node of an acyclic graph given by its edges, every node it reaches directly or not.
    /// Each node's set is built once from its successors' sets (memoised depth-first).
    static func transitiveClosure(_ edges: [[Int]]) -> [Set<Int>] {
        var known = [Set<Int>?](repeating: nil, count: edges.count)
        func closure(_ node: Int) -> Set<Int> {
            if let done = known[node] { return done }
            var result = Set(edges[node])
            for next in edges[node] { result.formUnion(closure(next)) }
            known[node] = result
            return result
        }
        return edges.indices.map(closure)
    }

    /// At most one pivot; every other step runs before it or after it; steps after it have no compensation.
    private mutating func checkPivot(_ steps: [StepDefinition], closure: [Set<Int>]) -> Int? {
        let pivots = steps.indices.filter { steps[$0].isPivot }
        guard let pivot = pivots.first else { return nil }
        for extra in pivots.dropFirst() {
            report(
                JSONPath.root.appending("steps").appending(extra).appending("pivot"),
                "only one step can be the pivot, and \"\(steps[pivot].name)\" already is; remove \"pivot\" here")
        }
        if steps[pivot].compensation != nil {
            report(
                JSONPath.root.appending("steps").appending(pivot).appending("compensation"),
                "\"\(steps[pivot].name)\" is the pivot, the point of no return: once it succeeds nothing is undone, so its compensation would never run; remove it")
        }
        for index in steps.indices where index != pivot {
            let before = closure[pivot].contains(index)
            let after = closure[index].contains(pivot)
            let path = JSONPath.root.appending("steps").appending(index)
            if !before && !after {
                report(
                    path, "\"\(steps[index].name)\" runs neither before nor after the pivot \"\(steps[pivot].name)\", so it could still be running when the saga can no longer turn back; make the pivot depend on it, or it on the pivot")
            }
            if after, steps[index].compensation != nil {
                report(
                    path.appending("compensation"),
                    "\"\(steps[index].name)\" runs after the pivot \"\(steps[pivot].name)\": once the pivot succeeds the saga only goes forward, so this compensation would never run; remove it")
            }
        }
        return pivot
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.count <= 100, first.isASCIIAlphanumeric else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "_" || $0 == "-" }
    }

    // MARK: - Steps and calls

    private mutating func step(
        _ value: JSONValue, at path: JSONPath, index: Int, timeout: Duration, forwardRetry: RetryPolicy, compensationRetry: RetryPolicy
    ) -> StepDefinition? {
        guard let members = object(value, at: path, allowed: Self.stepFields, what: "a step") else { return nil }
        let name = string(members, "name", at: path, required: true, hint: "name the step, for example \"charge-card\"")
        if let name, !Self.isValidName(name) || name.contains(".") {
            report(path.appending("name"), "\"\(name)\" is not a valid step name; use letters, digits, '_' or '-' (no dots), starting with a letter or digit")
        }
        var request: CallDefinition?
        /// Each call as far as it parsed, checked for its templates if the step cannot be built.
        var calls: [(path: JSONPath, includingOwn: Bool, call: CallDefinition)] = []
        if let requestValue = members["request"] {
            request = call(requestValue, at: path.appending("request"), timeout: timeout, retry: forwardRetry)
            if let parsed = request ?? partialCall { calls.append((path.appending("request"), false, parsed)) }
        } else {
            report(path, "\"request\" is required: give the HTTP call this step makes, with at least \"method\" and \"url\"")
        }
        var compensation: CallDefinition?
        if let compensationValue = members["compensation"] {
            compensation = call(compensationValue, at: path.appending("compensation"), timeout: timeout, retry: compensationRetry)
            if let parsed = compensation ?? partialCall { calls.append((path.appending("compensation"), true, parsed)) }
        }
        var isPivot = false
        if let pivotValue = members["pivot"] {
            if let flag = pivotValue.boolValue { isPivot = flag } else {
                report(path.appending("pivot"), "\"pivot\" must be true or false, but it is \(pivotValue.jsonText)")
            }
        }
        var compensateUnknown = true
        if let value = members["compensateUnknown"] {
            if let flag = value.boolValue { compensateUnknown = flag } else {
                report(
                    path.appending("compensateUnknown"),
                    "\"compensateUnknown\" must be true or false, but it is \(value.jsonText); false leaves a step whose outcome is unknown (a timeout) as it is instead of compensating it")
            }
        }
        var participant: String?
        if let value = members["participant"] {
            let participantPath = path.appending("participant")
            let declared = participantNames.sorted()
            if let text = value.stringValue, participantNames.contains(text) {
                participant = text
            } else if let text = value.stringValue {
                report(
                    participantPath,
                    declared.isEmpty
                        ? "\"participant\" names \"\(text)\", but the saga declares no participants; add \"participants\": {\"\(text)\": {}} at the top level (settings there, or in the server's --participants file)"
                        : "\"participant\" names \"\(text)\", which the saga's \"participants\" does not declare\(Suggestion.didYouMean(text, in: declared)); declared: \(declared.joined(separator: ", "))")
            } else {
                report(participantPath, "\"participant\" must be the name of one of the saga's \"participants\", but it is \(value.jsonText)")
            }
        }
        guard let name, let request, members["compensation"] == nil || compensation != nil else {
            unbuiltCalls += calls.map { (index, $0.path, $0.includingOwn, $0.call) }
            return nil
        }
        return StepDefinition(
            name: name, request: request, compensation: compensation, isPivot: isPivot, compensateUnknown: compensateUnknown,
            participant: participant)
    }

    private mutating func call(_ value: JSONValue, at path: JSONPath, timeout: Duration, retry: RetryPolicy) -> CallDefinition? {
        partialCall = nil
        guard let members = object(value, at: path, allowed: Self.callFields, what: "an HTTP call") else { return nil }
        let problemsBefore = problems.count

        var method = string(members, "method", at: path, required: true, hint: "use one of \(Self.methods.joined(separator: ", "))")
        if let m = method, !Self.methods.contains(m) {
            let upper = m.uppercased()
            report(path.appending("method"), "\"\(m)\" is not an HTTP method Skald sends; use one of \(Self.methods.joined(separator: ", "))\(Self.methods.contains(upper) ? " (methods are upper case: \"\(upper)\")" : "")")
            method = nil
        }

        var url: TemplateString?
        if let text = string(members, "url", at: path, required: true, hint: "give the URL to call, for example \"{{env.ORDERS_URL}}/orders/{{input.orderId}}\"") {
            url = template(text, at: path.appending("url"))
            if let url { checkURL(url, at: path.appending("url")) }
        }

        var headers: [CallDefinition.Header] = []
        if let headersValue = members["headers"] {
            let headersPath = path.appending("headers")
            if case .object(let fields) = headersValue {
                for key in fields.keys.sorted() {
                    let fieldPath = headersPath.appending(key)
                    if !Self.isToken(key) {
                        report(fieldPath, "\"\(key)\" is not a valid header name; use letters, digits and '-'")
                    } else if Self.reservedHeaders.contains(key.lowercased()) {
                        report(fieldPath, "Skald sets the \(key) header itself; remove it from the definition")
                    }
                    guard case .string(let text) = fields[key]! else {
                        report(fieldPath, "a header value must be a string, but it is \(fields[key]!.typeName); quote it")
                        continue
                    }
                    if let value = template(text, at: fieldPath) { headers.append(.init(name: key, value: value)) }
                }
            } else {
                report(headersPath, "\"headers\" must be an object of header names to string values, but it is \(headersValue.typeName)")
            }
        }

        var secretHeaders = CallDefinition.alwaysSecretHeaders
        if let value = members["secretHeaders"] {
            let secretPath = path.appending("secretHeaders")
            if case .array(let entries) = value {
                for (index, entry) in entries.enumerated() {
                    guard let name = entry.stringValue, headers.contains(where: { $0.name.lowercased() == name.lowercased() }) else {
                        report(
                            secretPath.appending(index),
                            "each entry of \"secretHeaders\" must name a header of this call's \"headers\"\(headers.isEmpty ? "" : " (\(headers.map(\.name).joined(separator: ", ")))"), but this one is \(entry.jsonText)")
                        continue
                    }
                    secretHeaders.insert(name.lowercased())
                }
            } else {
                report(secretPath, "\"secretHeaders\" must be an array of header names whose values are never shown, for example [\"X-Api-Key\"]")
            }
        }

        var body: TemplateValue?
        if let bodyValue = members["body"] {
            body = templateValue(bodyValue, at: path.appending("body"))
            if let method, method == "GET" || method == "HEAD" {
                report(path.appending("body"), "a \(method) request carries no body; remove \"body\" or use POST")
            }
        }

        let callTimeout = duration(members, "timeout", at: path, maximum: Self.maximumTimeout) ?? timeout
        var callRetry = retry
        if let retryValue = members["retry"] {
            callRetry = retryPolicy(retryValue, at: path.appending("retry"), base: retry) ?? retry
        }

        let maxElapsed = duration(members, "maxElapsed", at: path, maximum: Self.maximumDeadline)
        let rules = statusRules(members, at: path)

        guard problems.count == problemsBefore, let method, let url else {
            if let partialURL = url ?? (try? TemplateString(parsing: "")) {
                partialCall = CallDefinition(
                    method: method ?? "GET", url: partialURL, headers: headers, body: body, timeout: callTimeout,
                    retry: callRetry, statusRules: rules, maxElapsed: maxElapsed, secretHeaders: secretHeaders)
            }
            return nil
        }
        return CallDefinition(
            method: method, url: url, headers: headers, body: body, timeout: callTimeout, retry: callRetry, statusRules: rules,
            maxElapsed: maxElapsed, secretHeaders: secretHeaders)
    }

    private mutating func checkURL(_ url: TemplateString, at path: JSONPath) {
        let prefix = url.literalPrefix
        if url.parts.first.map({ if case .literal = $0 { true } else { false } }) ?? true {
            let lower = prefix.lowercased()
            guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
                report(path, "\"\(url.source)\" is not an http or https URL; start it with http://, https:// or a template such as {{env.SERVICE_URL}}")
                return
            }
            let afterScheme = prefix.drop(while: { $0 != "/" }).dropFirst(2)
            if afterScheme.isEmpty && url.parts.count == 1 {
                report(path, "\"\(url.source)\" has no host; write the full URL, for example \"http://127.0.0.1:8080/orders\"")
            }
        }
        if url.source.contains(where: { $0 == " " || $0 == "\n" }) {
            report(path, "\"\(url.source)\" contains whitespace; URLs cannot, so remove it or percent-encode it (%20)")
        }
    }

    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || "!#$%&'*+-.^_`|~".unicodeScalars.contains($0) }
    }

    private mutating func template(_ text: String, at path: JSONPath) -> TemplateString? {
        do {
            return try TemplateString(parsing: text)
        } catch {
            report(path, error.message)
            return nil
        }
    }

    private mutating func templateValue(_ value: JSONValue, at path: JSONPath) -> TemplateValue? {
        switch value {
        case .string(let text):
            guard text.contains("{{") else { return .literal(value) }
            return template(text, at: path).map(TemplateValue.string)
        case .array(let items):
            var out: [TemplateValue] = []
            for (i, item) in items.enumerated() {
                guard let rendered = templateValue(item, at: path.appending(i)) else { return nil }
                out.append(rendered)
            }
            return out.allSatisfy({ if case .literal = $0 { true } else { false } }) ? .literal(value) : .array(out)
        case .object(let members):
            var out: [String: TemplateValue] = [:]
            var failed = false
            for key in members.keys.sorted() {
                if let rendered = templateValue(members[key]!, at: path.appending(key)) { out[key] = rendered } else { failed = true }
            }
            if failed { return nil }
            return out.values.allSatisfy({ if case .literal = $0 { true } else { false } }) ? .literal(value) : .object(out)
        default:
            return .literal(value)
        }
    }

    // MARK: - Status rules

    private mutating func statusRules(_ members: [String: JSONValue], at path: JSONPath) -> StatusRules {
        func patterns(_ key: String) -> [StatusRules.Pattern]? {
            guard let value = members[key] else { return nil }
            let listPath = path.appending(key)
            guard case .array(let items) = value, !items.isEmpty else {
                report(listPath, "\"\(key)\" must be a non-empty array of statuses, for example [409, \"5xx\"]")
                return nil
            }
            var out: [StatusRules.Pattern] = []
            for (index, item) in items.enumerated() {
                if let code = item.intValue, (100...599).contains(code) {
                    out.append(.exact(Int(code)))
                } else if let text = item.stringValue, text.count == 3, text.hasSuffix("xx"), let digit = Int(text.prefix(1)), (1...5).contains(digit) {
                    out.append(.range(digit))
                } else {
                    report(listPath.appending(index), "\(item.jsonText) is not a status; write a number from 100 to 599 or a range such as \"4xx\"")
                }
            }
            return out
        }
        let success = patterns("successStatus")
        let retryOn = patterns("retryOn") ?? []
        let failOn = patterns("failOn") ?? []
        for pattern in retryOn where failOn.contains(pattern) {
            report(path.appending("retryOn"), "\(pattern) is in both retryOn and failOn; keep it in one of them")
        }
        for pattern in (retryOn + failOn) where success?.contains(pattern) == true {
            report(path.appending("successStatus"), "\(pattern) is in successStatus and also in retryOn or failOn; keep it in one of them")
        }
        return StatusRules(successStatus: success, retryOn: retryOn, failOn: failOn)
    }

    // MARK: - Retry

    private mutating func retryPolicy(_ value: JSONValue, at path: JSONPath, base: RetryPolicy) -> RetryPolicy? {
        guard let members = object(value, at: path, allowed: Self.retryFields, what: "a retry policy") else { return nil }
        let problemsBefore = problems.count
        var policy = base
        if let attempts = members["maxAttempts"] {
            if let n = attempts.intValue, n >= 1, n <= Self.maximumAttempts {
                policy.maxAttempts = Int(n)
            } else {
                report(path.appending("maxAttempts"), "\"maxAttempts\" counts every attempt, the first included; it must be a whole number from 1 to \(Self.maximumAttempts), but it is \(attempts.jsonText)")
            }
        }
        policy.initialInterval = duration(members, "initialInterval", at: path, maximum: Self.maximumInterval) ?? policy.initialInterval
        policy.maxInterval = duration(members, "maxInterval", at: path, maximum: Self.maximumInterval) ?? policy.maxInterval
        policy.backoffCoefficient = backoffCoefficient(members, at: path, multiplying: "the delay after each attempt") ?? policy.backoffCoefficient
        if let jitter = members["jitter"] {
            if let text = jitter.stringValue, let j = RetryPolicy.Jitter(rawValue: text) {
                policy.jitter = j
            } else {
                report(path.appending("jitter"), "\"jitter\" must be \"none\" or \"full\", but it is \(jitter.jsonText)")
            }
        }
        if problems.count == problemsBefore, policy.initialInterval > policy.maxInterval {
            report(path, "initialInterval (\(DurationText.format(policy.initialInterval))) is longer than maxInterval (\(DurationText.format(policy.maxInterval))); raise maxInterval or lower initialInterval")
        }
        return problems.count == problemsBefore ? policy : nil
    }

    /// `backoffCoefficient`: a number from 1 to 10 that multiplies `what` each time.
    mutating func backoffCoefficient(_ members: [String: JSONValue], at path: JSONPath, multiplying what: String) -> Double? {
        guard let value = members["backoffCoefficient"] else { return nil }
        if let number = value.doubleValue, number >= 1, number <= 10 { return number }
        report(path.appending("backoffCoefficient"), "\"backoffCoefficient\" multiplies \(what); it must be a number from 1 to 10, but it is \(value.jsonText)")
        return nil
    }

    // MARK: - Input schema

    private mutating func schema(_ value: JSONValue, at path: JSONPath) -> InputSchema? {
        guard let members = object(value, at: path, allowed: InputSchema.keywords, what: "a schema") else { return nil }
        let problemsBefore = problems.count
        var types: [String]?
        switch members["type"] {
        case nil: break
        case .string(let t)?: types = [t]
        case .array(let items)?: types = items.compactMap(\.stringValue)
        case let other?: report(path.appending("type"), "\"type\" must be a type name or a list of them, but it is \(other.typeName)")
        }
        for type in types ?? [] where !InputSchema.typeNames.contains(type) {
            report(path.appending("type"), "\"\(type)\" is not a JSON Schema type; use one of \(InputSchema.typeNames.joined(separator: ", "))")
        }
        var properties: [String: InputSchema]?
        if let propertiesValue = members["properties"] {
            if case .object(let fields) = propertiesValue {
                var out: [String: InputSchema] = [:]
                for key in fields.keys.sorted() {
                    if let child = schema(fields[key]!, at: path.appending("properties").appending(key)) { out[key] = child }
                }
                properties = out
            } else {
                report(path.appending("properties"), "\"properties\" must be an object of field names to schemas")
            }
        }
        var required: [String] = []
        if let requiredValue = members["required"] {
            if case .array(let items) = requiredValue, items.allSatisfy({ $0.stringValue != nil }) {
                required = items.compactMap(\.stringValue)
                for key in required where properties != nil && properties?[key] == nil {
                    report(path.appending("required"), "\"\(key)\" is required but not declared under \"properties\"; declare it or remove it from \"required\"")
                }
            } else {
                report(path.appending("required"), "\"required\" must be an array of field names")
            }
        }
        var items: InputSchema?
        if let itemsValue = members["items"] { items = schema(itemsValue, at: path.appending("items")) }
        var enumValues: [JSONValue]?
        if let enumValue = members["enum"] {
            if case .array(let values) = enumValue, !values.isEmpty { enumValues = values } else {
                report(path.appending("enum"), "\"enum\" must be a non-empty array of allowed values")
            }
        }
        var additionalProperties = true
        if let additional = members["additionalProperties"] {
            if let b = additional.boolValue { additionalProperties = b } else {
                report(path.appending("additionalProperties"), "Skald supports \"additionalProperties\" as true or false only")
            }
        }
        func number(_ key: String) -> Double? {
            guard let v = members[key] else { return nil }
            if let d = v.doubleValue { return d }
            report(path.appending(key), "\"\(key)\" must be a number")
            return nil
        }
        func count(_ key: String) -> Int? {
            guard let v = members[key] else { return nil }
            if let i = v.intValue, i >= 0 { return Int(i) }
            report(path.appending(key), "\"\(key)\" must be a whole number of at least 0")
            return nil
        }
        let minimum = number("minimum"), maximum = number("maximum")
        let minLength = count("minLength"), maxLength = count("maxLength")
        var pattern: String?
        if let p = members["pattern"] {
            if let text = p.stringValue, text.count > InputSchema.maximumPatternLength {
                report(
                    path.appending("pattern"),
                    "\"pattern\" is \(text.count) characters long, over the limit of \(InputSchema.maximumPatternLength); use a shorter pattern")
            } else if let text = p.stringValue, (try? NSRegularExpression(pattern: text)) != nil {
                // Checked with the engine that matches it later (ICU's), so the two never disagree on syntax.
                pattern = text
            } else {
                report(path.appending("pattern"), "\"pattern\" must be a valid regular expression string")
            }
        }
        var sensitive = false
        if let value = members["writeOnly"] {
            if let flag = value.boolValue { sensitive = flag } else {
                report(path.appending("writeOnly"), "\"writeOnly\" must be true or false (true: a sensitive field, such as a card number, shown as ***)")
            }
        }
        guard problems.count == problemsBefore else { return nil }
        return InputSchema(
            types: types, properties: properties, required: required, items: items, enumValues: enumValues,
            additionalProperties: additionalProperties, minimum: minimum, maximum: maximum, minLength: minLength,
            maxLength: maxLength, pattern: pattern, sensitive: sensitive, defaultValue: members["default"])
    }

    // MARK: - References

    private mutating func checkReferences(
        _ steps: [(index: Int, step: StepDefinition)], names: [String], reachable: [Set<Int>]?, inputSchema: InputSchema?
    ) {
        for (index, step) in steps {
            let stepPath = JSONPath.root.appending("steps").appending(index)
            let earlier = reachable?[index]
            checkCall(
                step.request, at: stepPath.appending("request"), stepIndex: index, includingOwn: false, names: names, earlier: earlier,
                inputSchema: inputSchema)
            if let compensation = step.compensation {
                checkCall(
                    compensation, at: stepPath.appending("compensation"), stepIndex: index, includingOwn: true, names: names,
                    earlier: earlier, inputSchema: inputSchema)
            }
        }
    }

    /// - Parameter earlier: the steps certain to have succeeded before this one runs (nil when the graph has a cycle).
    private mutating func checkCall(
        _ call: CallDefinition, at path: JSONPath, stepIndex: Int, includingOwn: Bool, names: [String], earlier: Set<Int>?,
        inputSchema: InputSchema?
    ) {
        for (fieldPath, reference) in call.locatedReferences(at: path) {
            switch reference {
            case .stepStatus(let step), .stepBody(let step, _):
                guard let target = names.firstIndex(of: step) else {
                    let known = names.filter { !$0.isEmpty }
                    report(fieldPath, "{{\(reference)}} refers to step \"\(step)\", which does not exist\(Suggestion.didYouMean(step, in: known)); the steps are \(known.joined(separator: ", "))")
                    continue
                }
                if target == stepIndex {
                    if !includingOwn {
                        report(fieldPath, "{{\(reference)}} refers to this step's own response, which does not exist before the request is sent; only a compensation may use it")
                    }
                } else if let earlier, !earlier.contains(target) {
                    if target > stepIndex && !usesDependsOn {
                        report(fieldPath, "{{\(reference)}} refers to step \"\(step)\", which runs after this one; a call can only use the responses of earlier steps\(includingOwn ? " and of its own step" : "")")
                    } else {
                        report(fieldPath, "{{\(reference)}} refers to step \"\(step)\", which may not have run when this call is made: it is not among the steps this one depends on, directly or through others; add \"\(step)\" to this step's dependsOn")
                    }
                }
            case .input(let inputPath):
                if let inputSchema, let gap = inputSchema.undeclaredPrefix(of: inputPath) {
                    let known = gap.known.isEmpty ? "" : " (declared: \(gap.known.joined(separator: ", ")))"
                    report(fieldPath, "{{\(reference)}} uses \(gap.walked).\(gap.missing), which inputSchema does not declare\(Suggestion.didYouMean(gap.missing, in: gap.known)); declare it under inputSchema or fix the reference\(known)")
                }
            case .stepIdempotencyKey(let step):
                // Known for every step from the start, so any step may use it.
                if !names.contains(step) {
                    let known = names.filter { !$0.isEmpty }
                    report(fieldPath, "{{\(reference)}} refers to step \"\(step)\", which does not exist\(Suggestion.didYouMean(step, in: known)); the steps are \(known.joined(separator: ", "))")
                }
            case .runID, .env:
                break
            }
        }
    }
}

extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}
