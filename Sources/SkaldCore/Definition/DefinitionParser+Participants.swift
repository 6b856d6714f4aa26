import Foundation

extension DefinitionParser {
    static let participantFields = ["baseUrl", "circuitBreaker", "bulkhead", "rateLimit"]
    static let circuitBreakerFields = [
        "failureRate", "minimumCalls", "windowCalls", "windowTime", "slowCall", "slowCallRate", "openFor", "maxOpenFor", "backoffCoefficient",
        "probes",
    ]
    static let bulkheadFields = ["maxInFlight"]
    static let rateLimitFields = ["perSecond", "burst"]
    static let participantsFileFields = ["$schema", "participants"]

    /// Reads the server-wide participants file (`skald serve --participants FILE`): `{"participants": {NAME: {…}}}`.
    public static func parseParticipants(_ bytes: [UInt8], file: String? = nil) throws(DefinitionError) -> [String: ParticipantSettings] {
        let document: JSONParser.Document
        do {
            document = try JSONParser.parse(bytes, options: .init(recordsLocations: true, rejectsDuplicateKeys: true))
        } catch {
            throw DefinitionError(
                file: file, problems: [DefinitionProblem(path: nil, location: error.location, message: "malformed JSON: \(error.message)")])
        }
        var parser = DefinitionParser(locations: document.locations)
        var participants: [String: ParticipantSettings] = [:]
        if let members = parser.object(document.value, at: .root, allowed: Self.participantsFileFields, what: "a participants file") {
            if let section = members["participants"] {
                participants = parser.participantsSection(section, at: JSONPath.root.appending("participants"), serverWide: true)
            } else {
                parser.report(.root, "\"participants\" is required: map each participant's name to its settings, for example {\"participants\": {\"payments\": {\"baseUrl\": \"http://127.0.0.1:9002\", \"circuitBreaker\": {}}}}")
            }
        }
        guard parser.problems.isEmpty else {
            let ordered = parser.problems.sorted { ($0.location?.line ?? .max, $0.location?.column ?? .max) < ($1.location?.line ?? .max, $1.location?.column ?? .max) }
            throw DefinitionError(file: file, problems: ordered)
        }
        return participants
    }

    /// A `participants` object: names to settings. Only the server-wide file may give a participant a `baseUrl`.
    mutating func participantsSection(_ value: JSONValue, at path: JSONPath, serverWide: Bool) -> [String: ParticipantSettings] {
        guard case .object(let entries) = value else {
            report(path, "\"participants\" must be an object that maps each participant's name to its settings, but it is \(value.typeName)")
            return [:]
        }
        var out: [String: ParticipantSettings] = [:]
        for name in entries.keys.sorted() {
            participantNames.insert(name)
            let entryPath = path.appending(name)
            guard Self.isValidName(name) else {
                report(entryPath, "\"\(name)\" is not a valid participant name; use 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")
                continue
            }
            if let settings = participant(entries[name]!, at: entryPath, serverWide: serverWide) { out[name] = settings }
        }
        return out
    }

    private mutating func participant(_ value: JSONValue, at path: JSONPath, serverWide: Bool) -> ParticipantSettings? {
        guard let members = object(value, at: path, allowed: Self.participantFields, what: "a participant") else { return nil }
        let problemsBefore = problems.count
        if !serverWide, members["baseUrl"] != nil {
            report(path.appending("baseUrl"), "\"baseUrl\" belongs in the server's --participants file, where it matches every saga's calls; a saga's steps name their participant with \"participant\"")
        }
        var settings = ParticipantSettings()
        if serverWide, let text = string(members, "baseUrl", at: path, required: false, hint: "the URL every call to this participant starts with, such as \"http://127.0.0.1:9002\"") {
            let lower = text.lowercased()
            if (lower.hasPrefix("http://") || lower.hasPrefix("https://")), URLComponents(string: text)?.host?.isEmpty == false {
                settings.baseURL = text
            } else {
                report(path.appending("baseUrl"), "\"\(text)\" is not an http or https URL with a host; write the URL the participant's calls start with, such as \"http://127.0.0.1:9002\"")
            }
        }
        if let breaker = members["circuitBreaker"] {
            settings.circuitBreaker = circuitBreaker(breaker, at: path.appending("circuitBreaker"))
        }
        if let bulkhead = members["bulkhead"], let fields = object(bulkhead, at: path.appending("bulkhead"), allowed: Self.bulkheadFields, what: "\"bulkhead\"") {
            settings.maxInFlight = count(fields, "maxInFlight", at: path.appending("bulkhead"), range: 1...10_000, required: true, meaning: "the most attempts in flight to the participant at once")
        }
        if let rate = members["rateLimit"], let fields = object(rate, at: path.appending("rateLimit"), allowed: Self.rateLimitFields, what: "\"rateLimit\"") {
            let ratePath = path.appending("rateLimit")
            var perSecond: Double?
            if let value = fields["perSecond"] {
                if let number = value.doubleValue, number > 0, number <= 1_000_000 {
                    perSecond = number
                } else {
                    report(ratePath.appending("perSecond"), "\"perSecond\" is the calls a second the participant is sent, across all runs; it must be a number above 0 and at most 1000000, but it is \(value.jsonText)")
                }
            } else {
                report(ratePath, "\"perSecond\" is required: the calls a second the participant may be sent, across all runs")
            }
            let burst = count(fields, "burst", at: ratePath, range: 1...100_000, required: false, meaning: "the calls that may go at once after a quiet spell") ?? 1
            if let perSecond { settings.rateLimit = RateLimitSettings(perSecond: perSecond, burst: burst) }
        }
        return problems.count == problemsBefore ? settings : nil
    }

    private mutating func circuitBreaker(_ value: JSONValue, at path: JSONPath) -> CircuitBreakerSettings? {
        guard let members = object(value, at: path, allowed: Self.circuitBreakerFields, what: "\"circuitBreaker\"") else { return nil }
        let problemsBefore = problems.count
        var settings = CircuitBreakerSettings()
        settings.failureRate = percentage(members, "failureRate", at: path, meaning: "the share of failed calls in the window that opens the circuit") ?? settings.failureRate
        settings.slowCallRate = percentage(members, "slowCallRate", at: path, meaning: "the share of slow calls in the window that opens the circuit") ?? settings.slowCallRate
        settings.minimumCalls = count(members, "minimumCalls", at: path, range: 1...10_000, required: false, meaning: "the fewest calls in the window before the circuit may open") ?? settings.minimumCalls
        settings.probes = count(members, "probes", at: path, range: 1...1_000, required: false, meaning: "the trial calls let through when half-open") ?? settings.probes
        let windowCalls = count(members, "windowCalls", at: path, range: 1...10_000, required: false, meaning: "how many of the latest calls the failure rate is taken over")
        let windowTime = duration(members, "windowTime", at: path, maximum: .seconds(3600))
        if members["windowCalls"] != nil && members["windowTime"] != nil {
            report(path.appending("windowTime"), "give \"windowCalls\" (the last N calls) or \"windowTime\" (the calls of the last span of time), not both")
        } else if let windowCalls {
            settings.window = .calls(windowCalls)
            if members["minimumCalls"] == nil { settings.minimumCalls = min(settings.minimumCalls, windowCalls) }
        } else if let windowTime {
            settings.window = .time(windowTime)
        }
        if case .calls(let size) = settings.window, settings.minimumCalls > size, members["minimumCalls"] != nil {
            report(path.appending("minimumCalls"), "\"minimumCalls\" (\(settings.minimumCalls)) is more than the window holds (windowCalls \(size)), so the circuit could never open; lower it or widen the window")
        }
        settings.slowCall = duration(members, "slowCall", at: path, maximum: Self.maximumTimeout)
        if members["slowCallRate"] != nil && members["slowCall"] == nil {
            report(path.appending("slowCallRate"), "\"slowCallRate\" needs \"slowCall\": the duration from which a call counts as slow, such as \"2s\"")
        }
        settings.openFor = duration(members, "openFor", at: path, maximum: Self.maximumInterval) ?? settings.openFor
        settings.maxOpenFor = duration(members, "maxOpenFor", at: path, maximum: Self.maximumInterval) ?? max(settings.maxOpenFor, settings.openFor)
        settings.backoffCoefficient = backoffCoefficient(members, at: path, multiplying: "the open time each time a probe fails") ?? settings.backoffCoefficient
        if problems.count == problemsBefore, settings.openFor > settings.maxOpenFor {
            report(path, "openFor (\(DurationText.format(settings.openFor))) is longer than maxOpenFor (\(DurationText.format(settings.maxOpenFor))); raise maxOpenFor or lower openFor")
        }
        return problems.count == problemsBefore ? settings : nil
    }

    private mutating func percentage(_ members: [String: JSONValue], _ key: String, at path: JSONPath, meaning: String) -> Double? {
        guard let value = members[key] else { return nil }
        if let number = value.doubleValue, number > 0, number <= 100 { return number }
        report(path.appending(key), "\"\(key)\" is \(meaning), in percent; it must be a number above 0 and at most 100, but it is \(value.jsonText)")
        return nil
    }

    private mutating func count(
        _ members: [String: JSONValue], _ key: String, at path: JSONPath, range: ClosedRange<Int>, required: Bool, meaning: String
    ) -> Int? {
        guard let value = members[key] else {
            if required { report(path, "\"\(key)\" is required: \(meaning)") }
            return nil
        }
        if let number = value.intValue, number >= range.lowerBound, number <= range.upperBound { return Int(number) }
        report(path.appending(key), "\"\(key)\" is \(meaning); it must be a whole number from \(range.lowerBound) to \(range.upperBound), but it is \(value.jsonText)")
        return nil
    }
}
