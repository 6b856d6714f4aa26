/// Durations as a person writes them in a saga: `250ms`, `5s`, `2m`, `1h`, `7d`, `1m30s`, `1.5s`.
public enum DurationText {
    /// The longest duration any field or option accepts: 100 years. Longer texts are refused rather than
    /// converted, so no input can overflow the arithmetic done with a duration later.
    public static let maximum: Duration = .seconds(100 * 365 * 86_400)

    /// Why a text is not an acceptable duration.
    public enum Problem: Error, Sendable, Equatable {
        /// Not a number followed by a unit.
        case notADuration
        /// A duration, but longer than `maximum`.
        case tooLong
    }

    /// Parses a duration, or returns nil when the text is not one or is longer than `maximum`.
    public static func parse(_ text: String) -> Duration? {
        try? check(text).get()
    }

    /// Parses a duration, saying why when the text is not one (or is longer than `maximum`).
    public static func check(_ text: String) -> Result<Duration, Problem> {
        var rest = Substring(text)
        guard !rest.isEmpty, rest.utf8.count <= 64 else { return .failure(.notADuration) }
        var totalMilliseconds = 0.0
        while !rest.isEmpty {
            // Digits, optionally a point and more digits: `5`, `1.5`; not `.5` or `1.`.
            let whole = rest.prefix { $0.isASCII && $0.isNumber }
            var number = whole
            if !whole.isEmpty, rest.dropFirst(whole.count).first == "." {
                let fraction = rest.dropFirst(whole.count + 1).prefix { $0.isASCII && $0.isNumber }
                guard !fraction.isEmpty else { return .failure(.notADuration) }
                number = rest.prefix(whole.count + 1 + fraction.count)
            }
            guard !number.isEmpty, let value = Double(number), value.isFinite else { return .failure(.notADuration) }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            guard !unit.isEmpty else { return .failure(.notADuration) }
            rest = rest.dropFirst(unit.count)
            let millisecondsPerUnit: Double
            switch unit {
            case "ms": millisecondsPerUnit = 1
            case "s": millisecondsPerUnit = 1000
            case "m": millisecondsPerUnit = 60_000
            case "h": millisecondsPerUnit = 3_600_000
            case "d": millisecondsPerUnit = 86_400_000
            default: return .failure(.notADuration)
            }
            totalMilliseconds += value * millisecondsPerUnit
            // Checked before any conversion to an integer, which would trap on a value this large.
            guard totalMilliseconds <= maximum.milliseconds else { return .failure(.tooLong) }
        }
        return .success(.microseconds(Int64((totalMilliseconds * 1000).rounded())))
    }

    /// A short form for output: `0ms`, `250ms`, `1.2s`, `2m5s`.
    public static func format(_ duration: Duration) -> String {
        let ms = duration.milliseconds
        if ms < 1000 { return "\(max(0, Int64(ms.rounded())))ms" }
        if ms < 60_000 {
            let tenths = (ms / 100).rounded() / 10
            return tenths == tenths.rounded() ? "\(Int64(tenths))s" : "\(tenths)s"
        }
        let seconds = Int64((ms / 1000).rounded())
        if seconds < 3600 {
            return seconds % 60 == 0 ? "\(seconds / 60)m" : "\(seconds / 60)m\(seconds % 60)s"
        }
        let minutes = seconds / 60
        return minutes % 60 == 0 ? "\(minutes / 60)h" : "\(minutes / 60)h\(minutes % 60)m"
    }
}

extension Duration {
    /// The duration in (fractional) milliseconds.
    public var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    /// The duration in (fractional) seconds.
    public var seconds: Double { milliseconds / 1000 }

    /// A duration of `secondsValue` seconds, held within ±`DurationText.maximum` (NaN counts as zero), so a
    /// value computed from outside input can never trap the conversion.
    public init(secondsValue: Double) {
        let limit = DurationText.maximum.seconds
        let seconds = secondsValue.isNaN ? 0 : min(max(secondsValue, -limit), limit)
        self = .microseconds(Int64((seconds * 1_000_000).rounded()))
    }
}
