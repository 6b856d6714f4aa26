import Foundation
import SkaldCore

/// The token of one attempt of a callback step: 256 random bits from the system's secure source, as 64 hex digits.
/// It is the only authority a callback needs (no API token), for that attempt of that step of that run.
public enum CallbackToken {
    public static func new() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let word = generator.next() as UInt64
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// The URL a participant posts the callback to.
    public static func url(base: String, token: String) -> String {
        (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/callbacks/" + token
    }

    /// Whether `text` has the shape of a token (so nothing else is looked up).
    public static func isWellFormed(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
