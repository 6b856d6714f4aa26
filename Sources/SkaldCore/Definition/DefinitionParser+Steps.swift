import Foundation

/// A saga's steps and their calls: requests, compensations, templates, status rules and retry policies.
extension DefinitionParser {
    // MARK: - Steps and calls

    mutating func step(
        _ value: JSONValue, at path: JSONPath, index: Int, timeout: Duration, forwardRetry: RetryPolicy, compensationRetry: RetryPolicy
    ) -> StepDefinition? {
        guard let members = object(value, at: path, allowed: Self.stepFields, what: "a step") else { return nil }
        let name = string(members, "name", at: path, required: true, hint: "name the step, for example \"charge-card\"")
        if let name, !Self.isValidName(name) || name.contains(".") {
            report(path.appending("name"), "\"\(name)\" is not a valid step name; use letters, digits, '_' or '-' (no dots), starting with a letter or digit")
        }
        var action: StepAction?
        /// Each call as far as it parsed, checked for its templates if the step cannot be built.
        var calls: [(path: JSONPath, includingOwn: Bool, call: CallDefinition)] = []
        let kinds = Self.actionFields.filter { members[$0] != nil }
        if members["callback"] != nil && members["request"] == nil {
            report(
                path.appending("callback"),
                "\"callback\" completes the step's \"request\" later, so it needs one: add the request that the participant accepts (with {{callback.url}} for it to post to)")
        }
        if kinds.count > 1 {
            report(
                path.appending(kinds[1]),
                "a step does one thing: it has both \"\(kinds[0])\" and \"\(kinds[1])\"; keep one (an HTTP call, an approval by a person, or a sleep) and split the rest into steps of their own")
        } else if let requestValue = members["request"] {
            let request = call(requestValue, at: path.appending("request"), timeout: timeout, retry: forwardRetry)
            if let parsed = request ?? partialCall { calls.append((path.appending("request"), false, parsed)) }
            if let value = members["callback"] {
                let callback = callbackDefinition(value, at: path.appending("callback"))
                action = request.flatMap { request in callback.map { .callback(request, $0) } }
            } else {
                action = request.map(StepAction.call)
            }
        } else if let value = members["saga"] {
            action = childSaga(value, at: path.appending("saga")).map(StepAction.child)
            if members["compensation"] != nil {
                report(
                    path.appending("compensation"),
                    "a step that runs a child saga is undone by reverting the child (its own compensations run, in reverse); remove \"compensation\"")
            }
        } else if let value = members["approval"] {
            action = approval(value, at: path.appending("approval")).map(StepAction.approval)
        } else if let value = members["sleep"] {
            action = sleepDuration(value, at: path.appending("sleep")).map { .sleep(.duration($0)) }
        } else if let value = members["sleepUntil"] {
            let fieldPath = path.appending("sleepUntil")
            if let text = value.stringValue, text.contains("{{") {
                action = template(text, at: fieldPath).map { .sleep(.until($0)) }
            } else if let text = value.stringValue, Self.rfc3339(text) != nil {
                action = template(text, at: fieldPath).map { .sleep(.until($0)) }
            } else {
                report(
                    fieldPath,
                    "\"sleepUntil\" must be an RFC 3339 time such as \"2026-12-24T18:00:00Z\", or a template that gives one, such as \"{{input.releaseAt}}\"; it is \(value.jsonText)")
            }
        } else {
            report(
                path,
                "a step needs what it does: \"request\" (the HTTP call it makes, with at least \"method\" and \"url\"), \"approval\" (a person decides), \"sleep\" or \"sleepUntil\" (it waits)")
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
        let conditions = stepConditions(members, at: path)
        guard let name, let action, members["compensation"] == nil || compensation != nil, let conditions else {
            unbuiltCalls += calls.map { (index, $0.path, $0.includingOwn, $0.call) }
            return nil
        }
        var step = StepDefinition(
            name: name, action: action, compensation: compensation, isPivot: isPivot, compensateUnknown: compensateUnknown,
            participant: participant)
        (step.when, step.failWhen, step.retryWhen) = conditions
        if let value = members["forEach"] { step.forEach = forEach(value, at: path.appending("forEach"), step: step) }
        if let value = members["maxConcurrency"] {
            let fieldPath = path.appending("maxConcurrency")
            if members["forEach"] == nil {
                report(fieldPath, "\"maxConcurrency\" bounds how many of a forEach step's calls run at once, and this step declares no \"forEach\"; remove it")
            } else if let count = value.intValue, count >= 1, count <= Int64(SagaDefinition.maximumItems) {
                step.maxConcurrency = Int(count)
            } else {
                report(fieldPath, "\"maxConcurrency\" must be a whole number from 1 to \(SagaDefinition.maximumItems), but it is \(value.jsonText)")
            }
        }
        return step
    }

    /// `"forEach": "{{input.items}}"`: one whole reference to an array of the input or of an earlier answer, on a step
    /// that makes a plain call.
    mutating func forEach(_ value: JSONValue, at path: JSONPath, step: StepDefinition) -> TemplateString? {
        guard let text = value.stringValue else {
            report(path, "\"forEach\" must name the array to run over, such as \"{{input.items}}\" or \"{{steps.list.response.body.items}}\"; it is \(value.jsonText)")
            return nil
        }
        guard let template = template(text, at: path) else { return nil }
        guard let reference = template.wholeReference else {
            report(path, "\"forEach\" must be one whole reference, such as \"{{input.items}}\", with no text around it; it is \"\(text)\"")
            return nil
        }
        switch reference {
        case .input, .stepBody, .stepCallbackOutput, .stepResponses:
            break
        default:
            report(path, "\"forEach\" runs over an array of the input or of an earlier step's answer ({{input…}}, {{steps.NAME.response.body…}}, {{steps.NAME.callback.output…}}); {{\(reference)}} is not one")
            return nil
        }
        if template.wholeDefault != nil {
            report(path, "\"forEach\" cannot have a ?? default; give a default of [] in the input, or guard the step with \"when\"")
        }
        guard case .call = step.action else {
            report(path, "\"forEach\" makes one HTTP call per item, so the step needs a plain \"request\" (not a callback, an approval or a sleep)")
            return nil
        }
        if step.isPivot {
            report(path, "the pivot is one call that settles the saga's direction; it cannot run once per item. Make another step the pivot, or remove \"forEach\"")
        }
        return template
    }

    // MARK: - Steps that wait

    /// `"saga": {"name": "ship-parcel", "version": 2, "input": {…}}`: a child run of another saga.
    mutating func childSaga(_ value: JSONValue, at path: JSONPath) -> ChildSagaDefinition? {
        guard let members = object(value, at: path, allowed: Self.childFields, what: "a child saga") else { return nil }
        let problemsBefore = problems.count
        let name = string(members, "name", at: path, required: true, hint: "name the saga to run, as registered, for example \"ship-parcel\"")
        if let name, !Self.isValidName(name) {
            report(path.appending("name"), "\"\(name)\" is not a valid saga name; use 1 to 100 letters, digits, '.', '_' or '-'")
        }
        var version: Int?
        if let value = members["version"] {
            if let number = value.intValue, number >= 1, number <= Int64(Int32.max) {
                version = Int(number)
            } else {
                report(path.appending("version"), "\"version\" must be a whole number of at least 1 (leave it out to run the latest version registered), but it is \(value.jsonText)")
            }
        }
        var input = TemplateValue.literal([:])
        if let value = members["input"] {
            if case .object = value, let template = templateValue(value, at: path.appending("input")) {
                input = template
            } else if value.objectValue == nil {
                report(path.appending("input"), "\"input\" is the child run's input: an object whose values may be templates, such as {\"orderId\": \"{{input.orderId}}\"}; it is \(value.typeName)")
            }
        }
        guard problems.count == problemsBefore, let name else { return nil }
        return ChildSagaDefinition(name: name, version: version, input: input)
    }

    mutating func callbackDefinition(_ value: JSONValue, at path: JSONPath) -> CallbackDefinition? {
        guard let members = object(value, at: path, allowed: Self.callbackFields, what: "a callback") else { return nil }
        let problemsBefore = problems.count
        let timeout = duration(members, "timeout", at: path, maximum: Self.maximumWait)
        if members["timeout"] == nil {
            report(path, "\"timeout\" is required: how long the step waits for the participant's callback once it accepted the request, for example \"2h\"; past it the outcome is unknown")
        }
        let heartbeat = duration(members, "heartbeat", at: path, maximum: Self.maximumWait)
        if let heartbeat, let timeout, heartbeat >= timeout {
            report(path.appending("heartbeat"), "\"heartbeat\" (\(DurationText.format(heartbeat))) must be shorter than \"timeout\" (\(DurationText.format(timeout))), or it never matters")
        }
        guard problems.count == problemsBefore, let timeout else { return nil }
        return CallbackDefinition(timeout: timeout, heartbeat: heartbeat)
    }

    mutating func approval(_ value: JSONValue, at path: JSONPath) -> ApprovalDefinition? {
        guard let members = object(value, at: path, allowed: Self.approvalFields, what: "an approval") else { return nil }
        let problemsBefore = problems.count
        let timeout = duration(members, "timeout", at: path, maximum: Self.maximumWait)
        if members["timeout"] == nil {
            report(path, "\"timeout\" is required: how long the run waits for a person's decision before it counts as a rejection, for example \"48h\"")
        }
        var prompt: TemplateString?
        if let text = string(members, "prompt", at: path, required: false, hint: "write what the person is asked, for example \"Refund {{input.amount}} EUR?\"") {
            prompt = template(text, at: path.appending("prompt"))
        }
        guard problems.count == problemsBefore, let timeout else { return nil }
        return ApprovalDefinition(timeout: timeout, prompt: prompt)
    }

    mutating func sleepDuration(_ value: JSONValue, at path: JSONPath) -> Duration? {
        let key = path.components.last.flatMap { if case .key(let k) = $0 { k } else { nil } } ?? "sleep"
        var parent = path
        parent.components.removeLast()
        return duration([key: value], key, at: parent, maximum: Self.maximumWait)
    }

    /// An RFC 3339 time (`2026-12-24T18:00:00Z`, with an offset or fractional seconds too).
    public static func rfc3339(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    mutating func call(_ value: JSONValue, at path: JSONPath, timeout: Duration, retry: RetryPolicy) -> CallDefinition? {
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

    mutating func checkURL(_ url: TemplateString, at path: JSONPath) {
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

    mutating func template(_ text: String, at path: JSONPath) -> TemplateString? {
        do {
            return try TemplateString(parsing: text)
        } catch {
            report(path, error.message)
            return nil
        }
    }

    mutating func templateValue(_ value: JSONValue, at path: JSONPath) -> TemplateValue? {
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

    mutating func statusRules(_ members: [String: JSONValue], at path: JSONPath) -> StatusRules {
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

    mutating func retryPolicy(_ value: JSONValue, at path: JSONPath, base: RetryPolicy) -> RetryPolicy? {
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
}
