import SkaldCore

/// A JSON object the API sends or takes. Its fields are its `CodingKeys`, listed in the type, so that a test can
/// hold them against `docs/openapi.json` (`APIContractTests`): a field the document lacks, or one it names that the
/// type lacks, fails the build's tests.
public protocol APIObject: Codable, Sendable {
    associatedtype CodingKeys: CodingKey & CaseIterable & RawRepresentable<String>

    /// What a required field of a request is, for the answer that says it is missing.
    static var help: [String: String] { get }
}

extension APIObject {
    public static var help: [String: String] { [:] }

    /// The answer to a request that lacks `field` (or sends it empty).
    public static func required(_ field: String) -> String {
        "\"\(field)\" is required" + (help[field].map { ": " + $0 } ?? "")
    }

    /// The object's field names, as sent.
    public static var fields: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// The object as the API sends it.
    public func json() -> JSONValue {
        // Every API type encodes without throwing: no custom encoding, no non-finite numbers.
        (try? JSONValueCoding.encode(self)) ?? .object([:])
    }

    public init(json: JSONValue) throws {
        self = try JSONValueCoding.decode(Self.self, from: json)
    }
}

/// A field the API always sends, as `null` when it has no value (where a plain optional is left out).
@propertyWrapper
public struct Nullable<Value: Codable & Sendable>: Codable, Sendable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension Nullable: Equatable where Value: Equatable {}

extension KeyedDecodingContainer {
    /// A `Nullable` field that is missing reads as `nil`, as one sent as `null` does.
    public func decode<Value>(_ type: Nullable<Value>.Type, forKey key: Key) throws -> Nullable<Value> {
        try decodeIfPresent(type, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}
