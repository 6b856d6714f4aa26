import Crypto
import Foundation
import SkaldCore

/// The operator's key for the `writeOnly` fields of run inputs (`--data-key`, `SKALD_DATA_KEY`): each such field is
/// stored sealed with AES-256-GCM, so a copy of the database (a backup, an export) does not show it. The engine opens
/// them only in memory, to render the calls that use them. Without a key they are stored as given.
public struct DataKey: Sendable {
    /// The marker of a sealed value: `{"skald:sealed": "v1:BASE64(nonce ‖ ciphertext ‖ tag)"}`.
    public static let marker = SealedValue.marker
    static let prefix = "v1:"

    let key: SymmetricKey

    /// - Parameter text: 32 bytes, as base64 (`openssl rand -base64 32`) or as 64 hexadecimal digits.
    /// - Throws: `DataKey.Problem` saying what a key must be.
    public init(text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        var bytes: [UInt8]?
        if trimmed.count == 64, trimmed.allSatisfy({ $0.isASCII && $0.isHexDigit }) {
            bytes = stride(from: 0, to: 64, by: 2).map { offset in
                let start = trimmed.index(trimmed.startIndex, offsetBy: offset)
                return UInt8(trimmed[start..<trimmed.index(start, offsetBy: 2)], radix: 16)!
            }
        } else if let data = Data(base64Encoded: trimmed) {
            bytes = Array(data)
        }
        guard let bytes, bytes.count == 32 else {
            throw Problem(message: "a data key is 32 random bytes, written as base64 (openssl rand -base64 32) or as 64 hexadecimal digits")
        }
        key = SymmetricKey(data: bytes)
    }

    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The value sealed: the marker object holding its JSON text, encrypted and authenticated.
    public func seal(_ value: JSONValue) throws -> JSONValue {
        let box = try AES.GCM.seal(Array(value.jsonText.utf8), using: key)
        guard let combined = box.combined else { throw Problem(message: "sealing a value failed") }
        return [Self.marker: .string(Self.prefix + combined.base64EncodedString())]
    }

    /// The sealed value opened. - Throws: `Problem` when it was sealed with another key, or was changed.
    public func open(_ sealed: String) throws -> JSONValue {
        guard sealed.hasPrefix(Self.prefix), let combined = Data(base64Encoded: String(sealed.dropFirst(Self.prefix.count))) else {
            throw Problem(message: "a sealed value is not in the form this Skald writes")
        }
        do {
            let plain = try AES.GCM.open(try AES.GCM.SealedBox(combined: combined), using: key)
            return try JSONParser.parse(Array(plain)).value
        } catch {
            throw Problem(message: "a sealed value does not open with this --data-key: it was sealed with another key, or changed")
        }
    }

    /// The sealed string inside `value`, when `value` is a sealed marker.
    public static func sealedText(_ value: JSONValue) -> String? { SealedValue.text(value) }

    /// Whether any value inside `value` is sealed.
    public static func containsSealed(_ value: JSONValue) -> Bool { SealedValue.isInside(value) }

    /// Whether a sealed value stands at one of the schema's writeOnly fields of `value`.
    public static func containsSealed(_ value: JSONValue, sealedOnlyAt schema: InputSchema) -> Bool {
        SealedValue.isInside(value, atWriteOnlyOf: schema)
    }

    /// `value` with every sealed value inside it opened.
    public func opening(_ value: JSONValue) throws -> JSONValue {
        if let sealed = Self.sealedText(value) { return try open(sealed) }
        switch value {
        case .object(let members): return .object(try members.mapValues(opening))
        case .array(let elements): return .array(try elements.map(opening))
        default: return value
        }
    }
}
