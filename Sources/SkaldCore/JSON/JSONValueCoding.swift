import Foundation

/// `Codable` types to and from `JSONValue`, without going through text.
///
/// The API's request and response types are `Codable`; the server and the CLI move them through `JSONValue`
/// (which keeps integers beyond 64 bits exact and writes sorted keys), so:
/// - a `JSONValue` field (a run's input, a response body) passes through as it is;
/// - a `Date` is the API's timestamp text, `2026-12-06T12:00:00.123Z`;
/// - a decoding error names the field (`DecodingError.codingPath`) and says what it should have been
///   (`JSONValueDecoding.describe`).
public enum JSONValueCoding {
    public static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let slot = Slot()
        try ValueEncoder(slot: slot, codingPath: []).encodeValue(value)
        return slot.value
    }

    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try ValueDecoder(value: value, codingPath: []).decodeValue(type)
    }

    /// The API's timestamps: ISO 8601 in UTC with milliseconds.
    public static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    public static func date(fromTimestamp text: String) -> Date? {
        (try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
            ?? (try? Date(text, strategy: .iso8601))
    }

    /// One line for a decoding error, naming the field as a person writes it: `"steps[2].name" must be a string,
    /// not a number`; `"saga" is required`.
    public static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var out = ""
            for key in keys {
                if let index = key.intValue { out += "[\(index)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
            }
            return out
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\"\(path(context.codingPath + [key]))\" is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let at = path(context.codingPath)
            return at.isEmpty ? context.debugDescription : "\"\(at)\" \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// `Codable` for use with any coder: integers beyond 64 bits become floating-point numbers there, which is why the
/// API moves `JSONValue` with `JSONValueCoding`, where they stay exact.
extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        if let decoder = decoder as? ValueDecoder {
            self = decoder.value
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        if let encoder = encoder as? ValueEncoder {
            encoder.slot.set(self)
            return
        }
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bigInteger(let text): try container.encode(Double(text) ?? 0)
        case .string(let value): try container.encode(value)
        case .array(let items): try container.encode(items)
        case .object(let members): try container.encode(members)
        }
    }
}

// MARK: - Encoding

/// Where an encoded value goes: set once, or filled as an object or an array by a container.
final class Slot {
    private enum Content {
        case unset
        case value(JSONValue)
        case object([(String, Slot)])
        case array([Slot])
    }

    private var content = Content.unset

    func set(_ value: JSONValue) { content = .value(value) }

    func member(_ key: String) -> Slot {
        let slot = Slot()
        if case .object(var members) = content {
            members.removeAll { $0.0 == key }
            members.append((key, slot))
            content = .object(members)
        } else {
            content = .object([(key, slot)])
        }
        return slot
    }

    func beginObject() {
        if case .object = content { return }
        content = .object([])
    }

    func beginArray() {
        if case .array = content { return }
        content = .array([])
    }

    func append() -> Slot {
        let slot = Slot()
        if case .array(var items) = content {
            items.append(slot)
            content = .array(items)
        } else {
            content = .array([slot])
        }
        return slot
    }

    var count: Int {
        switch content {
        case .array(let items): items.count
        case .object(let members): members.count
        default: 0
        }
    }

    var value: JSONValue {
        switch content {
        case .unset: .object([:])
        case .value(let value): value
        case .object(let members): .object(Dictionary(members.map { ($0.0, $0.1.value) }, uniquingKeysWith: { _, last in last }))
        case .array(let items): .array(items.map(\.value))
        }
    }
}

struct ValueEncoder: Encoder {
    let slot: Slot
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func encodeValue<T: Encodable>(_ value: T) throws {
        switch value {
        case let json as JSONValue: slot.set(json)
        case let date as Date: slot.set(.string(JSONValueCoding.timestamp(date)))
        case let url as URL: slot.set(.string(url.absoluteString))
        default: try value.encode(to: self)
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        slot.beginObject()
        return KeyedEncodingContainer(KeyedValueEncoder<Key>(slot: slot, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        slot.beginArray()
        return UnkeyedValueEncoder(slot: slot, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueEncoder(slot: slot, codingPath: codingPath) }
}

/// The value of a number or a string, as `JSONValue`.
private func primitive<T>(_ value: T) -> JSONValue? {
    switch value {
    case let value as Bool: .bool(value)
    case let value as String: .string(value)
    case let value as Double: value.isFinite ? .double(value) : .null
    case let value as Float: value.isFinite ? .double(Double(value)) : .null
    case let value as Int64: .int(value)
    case let value as any BinaryInteger: Int64(exactly: value).map(JSONValue.int) ?? .bigInteger(String(describing: value))
    default: nil
    }
}

private struct KeyedValueEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let slot: Slot
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { slot.member(key.stringValue).set(.null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        let member = slot.member(key.stringValue)
        if let value = primitive(value) { return member.set(value) }
        try ValueEncoder(slot: member, codingPath: codingPath + [key]).encodeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        ValueEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        ValueEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { ValueEncoder(slot: slot.member("super"), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { ValueEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key]) }
}

private struct UnkeyedValueEncoder: UnkeyedEncodingContainer {
    let slot: Slot
    let codingPath: [any CodingKey]
    var count: Int { slot.count }

    mutating func encodeNil() throws { slot.append().set(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let item = slot.append()
        if let value = primitive(value) { return item.set(value) }
        try ValueEncoder(slot: item, codingPath: codingPath + [Index(slot.count - 1)]).encodeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        ValueEncoder(slot: slot.append(), codingPath: codingPath).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        ValueEncoder(slot: slot.append(), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { ValueEncoder(slot: slot.append(), codingPath: codingPath) }
}

private struct SingleValueEncoder: SingleValueEncodingContainer {
    let slot: Slot
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { slot.set(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        if let value = primitive(value) { return slot.set(value) }
        try ValueEncoder(slot: slot, codingPath: codingPath).encodeValue(value)
    }
}

/// An array index in a coding path.
struct Index: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

// MARK: - Decoding

struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch(_ expected: String) -> DecodingError {
        DecodingError.typeMismatch(
            Any.self, .init(codingPath: codingPath, debugDescription: "must be \(expected), not \(value.typeName)"))
    }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if type == JSONValue.self, let same = value as? T { return same }
        if type == Date.self {
            guard case .string(let text) = value else { throw mismatch("a timestamp (text)") }
            guard let date = JSONValueCoding.date(fromTimestamp: text) as? T else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "must be an ISO 8601 timestamp, not \"\(text)\""))
            }
            return date
        }
        if let primitive = try decodePrimitive(type) { return primitive }
        return try T(from: self)
    }

    /// Booleans, strings and numbers, which their own `init(from:)` would ask a single-value container for.
    func decodePrimitive<T>(_ type: T.Type) throws -> T? {
        if type == String.self {
            guard case .string(let text) = value else { throw mismatch("a string") }
            return text as? T
        }
        if type == Bool.self {
            guard case .bool(let flag) = value else { throw mismatch("true or false") }
            return flag as? T
        }
        if type == Double.self || type == Float.self {
            let number: Double
            switch value {
            case .int(let whole): number = Double(whole)
            case .double(let real): number = real
            case .bigInteger(let text): number = Double(text) ?? .infinity
            default: throw mismatch("a number")
            }
            return type == Float.self ? Float(number) as? T : number as? T
        }
        if let integer = type as? any FixedWidthInteger.Type {
            return try decodeInteger(integer) as? T
        }
        return nil
    }

    private func decodeInteger<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        let whole: I?
        switch value {
        case .int(let number): whole = I(exactly: number)
        case .double(let number): whole = number.isFinite ? I(exactly: number) : nil
        case .bigInteger: whole = nil
        default: throw mismatch("a whole number")
        }
        guard let whole else {
            let isWhole: Bool
            switch value {
            case .double(let number): isWhole = number.isFinite && number.rounded() == number
            default: isWhole = true
            }
            let what = isWhole ? "a whole number from \(I.min) to \(I.max)" : "a whole number"
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "must be \(what), not \(value.jsonText)"))
        }
        return whole
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw mismatch("an object") }
        return KeyedDecodingContainer(KeyedValueDecoder<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch("an array") }
        return UnkeyedValueDecoder(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValueDecoder(decoder: self) }
}

private struct KeyedValueDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.keys.compactMap(Key.init(stringValue:)) }
    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    func member(_ key: Key) throws -> ValueDecoder {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "is required"))
        }
        return ValueDecoder(value: value, codingPath: codingPath + [key])
    }

    func decodeNil(forKey key: Key) throws -> Bool { members[key.stringValue].map { $0 == .null } ?? true }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let decoder = try member(key)
        if decoder.value == .null, type != JSONValue.self {
            throw DecodingError.valueNotFound(type, .init(codingPath: decoder.codingPath, debugDescription: "must not be null"))
        }
        return try decoder.decodeValue(type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try member(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try member(key).unkeyedContainer() }
    func superDecoder() throws -> any Decoder { ValueDecoder(value: members["super"] ?? .null, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try member(key) }
}

private struct UnkeyedValueDecoder: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(items: [JSONValue], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "has fewer items than expected"))
        }
        defer { currentIndex += 1 }
        return ValueDecoder(value: items[currentIndex], codingPath: codingPath + [Index(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let decoder = try next()
        if decoder.value == .null, type != JSONValue.self {
            throw DecodingError.valueNotFound(type, .init(codingPath: decoder.codingPath, debugDescription: "must not be null"))
        }
        return try decoder.decodeValue(type)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct SingleValueDecoder: SingleValueDecodingContainer {
    let decoder: ValueDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.value == .null }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if decoder.value == .null, type != JSONValue.self {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "must not be null"))
        }
        return try decoder.decodeValue(type)
    }
}
