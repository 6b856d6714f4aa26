import Foundation

/// Small pieces the machine's messages and event data are made of.
extension SagaMachine {
    static func label(_ step: String, _ phase: Phase) -> String {
        phase == .forward ? step : "\(step) (compensation)"
    }

    static func millis(_ duration: Duration) -> JSONValue {
        .int(Int64(duration.milliseconds.rounded()))
    }

    static func merging(_ base: JSONValue, _ extra: [String: JSONValue]) -> JSONValue {
        var members = base.objectValue ?? [:]
        for (key, value) in extra { members[key] = value }
        return .object(members)
    }
}
