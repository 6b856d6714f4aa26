import Foundation
/// Turns a JSON document into a validated `SagaDefinition`, collecting every problem instead of stopping at the first.
public struct DefinitionParser {
    public static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    /// Headers that Skald sets on every call; a definition may not set them.
    public static let reservedHeaders = ["idempotency-key", "skald-run", "skald-step", "skald-attempt", "skald-phase", "content-length", "host"]

    static let sagaFields = [
        "$schema", "name", "version", "description", "deadline", "defaults", "inputSchema", "participants", "steps", "output",
    ]
    static let defaultsFields = ["timeout", "retry", "compensationRetry"]
    /// The most steps a saga may have. Real sagas have a handful; the bound keeps validation, planning and the
    /// dependency graph (whose closure grows with the square of the steps) cheap for any definition.
    public static let maximumSteps = 256
    static let stepFields = [
        "name", "dependsOn", "pivot", "participant", "request", "callback", "approval", "sleep", "sleepUntil", "saga", "compensation",
        "compensateUnknown", "when", "failWhen", "retryWhen", "forEach", "maxConcurrency",
    ]
    static let callbackFields = ["timeout", "heartbeat"]
    /// The fields that say what a step does; a step has exactly one.
    static let actionFields = ["request", "approval", "sleep", "sleepUntil", "saga"]
    static let approvalFields = ["timeout", "prompt"]
    static let childFields = ["name", "version", "input"]
    /// The longest a step may wait for a person or a time.
    public static let maximumWait: Duration = .seconds(365 * 86_400)
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
    let locations: [JSONPath: SourceLocation]
    var dependencies: [[Int]] = []
    var usesDependsOn = false
    var pivot: Int?
    /// The calls of steps that could not be built, as far as they parsed, so that their templates are checked
    /// too: every problem is reported at once, not the template ones only after the structure is fixed.
    var unbuiltCalls: [(step: Int, path: JSONPath, includingOwn: Bool, call: CallDefinition)] = []
    /// What the last `call` parsed when it could not build the call.
    var partialCall: CallDefinition?
    var deadline: Duration?
    /// Every step in the file was built (so a step's position in `steps` is its position in the file).
    var stepsComplete = false
    /// The kind of wait of each step that was built (nil for a call), by name: a wait has no response to read.
    var stepKinds: [String: WaitKind?] = [:]
    /// The saga as far as it could be read, when it has problems: its warnings are shown with them.
    var partial: SagaDefinition?
    /// The names of the steps that declare `forEach` (from the file): they answer once per item.
    var forEachSteps: Set<String> = []

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

    mutating func saga(_ document: JSONValue) -> SagaDefinition? {
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
        var output: TemplateValue?
        let stepsPath = JSONPath.root.appending("steps")
        switch members["steps"] {
        case nil:
            report(.root, "\"steps\" is required: list the saga's steps in order, each with a \"name\" and a \"request\" (or an \"approval\" or a \"sleep\")")
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
            // From the file, so a wait that has problems of its own still has no response to read.
            for item in items {
                guard let name = item["name"]?.stringValue else { continue }
                stepKinds[name] = item["saga"] != nil ? .child : item["approval"] != nil ? .approval : item["sleep"] != nil || item["sleepUntil"] != nil ? .sleep
                    : item["callback"] != nil ? .callback : nil
            }
            forEachSteps = Set(items.compactMap { $0["forEach"] == nil ? nil : $0["name"]?.stringValue })
            checkReferences(parsed, names: names, reachable: graph.transitive, inputSchema: inputSchema)
            checkSkippable(parsed)
            for unbuilt in unbuiltCalls {
                checkCall(
                    unbuilt.call, at: unbuilt.path, stepIndex: unbuilt.step, includingOwn: unbuilt.includingOwn, names: names,
                    earlier: graph.transitive?[unbuilt.step], inputSchema: inputSchema)
            }
            if parsed.count == items.count, let closure = graph.transitive {
                pivot = checkPivot(parsed.map(\.step), closure: closure)
            }
            for step in parsed where step.step.action.child?.name == name {
                report(
                    stepsPath.appending(step.index).appending("saga").appending("name"),
                    "a saga cannot run itself as a child: that would start children without end; split the part it repeats into a saga of its own")
            }
            if let value = members["output"] { output = runOutput(value, steps: parsed.map(\.step), names: names, inputSchema: inputSchema) }
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
        var saga = SagaDefinition(
            name: name, version: version, description: description, inputSchema: inputSchema, steps: steps,
            dependencies: dependencies, pivot: pivot, deadline: deadline, participants: participants, document: document)
        saga.output = output
        return saga
    }

    // MARK: - Input schema

    mutating func schema(_ value: JSONValue, at path: JSONPath) -> InputSchema? {
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

}

extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}
