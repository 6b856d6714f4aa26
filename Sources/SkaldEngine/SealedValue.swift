import SkaldCore

/// How a sealed value looks in a stored input, `{"skald:sealed": "v1:…"}`, without the cryptography (`DataKey`), so
/// that what only needs to recognise one (the import's check, its fuzz target) needs no crypto library.
public enum SealedValue {
    public static let marker = "skald:sealed"

    /// The sealed string inside `value`, when `value` is a sealed marker.
    public static func text(_ value: JSONValue) -> String? {
        guard case .object(let members) = value, members.count == 1, let text = members[marker]?.stringValue else { return nil }
        return text
    }

    /// Whether any value inside `value` is sealed.
    public static func isInside(_ value: JSONValue) -> Bool {
        if text(value) != nil { return true }
        switch value {
        case .object(let members): return members.values.contains(where: isInside)
        case .array(let elements): return elements.contains(where: isInside)
        default: return false
        }
    }

    /// Whether a sealed value stands at one of the schema's writeOnly fields of `value`.
    public static func isInside(_ value: JSONValue, atWriteOnlyOf schema: InputSchema) -> Bool {
        var found = false
        _ = schema.transformingWriteOnly(value) { field in
            if text(field) != nil { found = true }
            return field
        }
        return found
    }
}
