import Foundation

/// Run ids sort by creation time: 10 characters of milliseconds and 16 of randomness, in Crockford's base 32 (a ULID).
public enum RunID {
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    public static func make(at date: Date, random: inout some RandomNumberGenerator) -> String {
        var chars: [Character] = []
        chars.reserveCapacity(26)
        var millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var time: [Character] = []
        for _ in 0..<10 {
            time.append(alphabet[Int(millis & 31)])
            millis >>= 5
        }
        chars.append(contentsOf: time.reversed())
        var bits = random.next()
        for i in 0..<16 {
            if i == 12 { bits = random.next() }
            chars.append(alphabet[Int(bits & 31)])
            bits >>= 5
        }
        return String(chars)
    }

    public static func make(at date: Date) -> String {
        var generator = SystemRandomNumberGenerator()
        return make(at: date, random: &generator)
    }
}
