/// Malformed JSON, with the line and column where parsing stopped.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public var description: String { "\(location): \(message)" }
}

/// A strict JSON parser (RFC 8259) that can also record where each value starts,
/// so that definition errors can point at a line and column.
public struct JSONParser {
    public struct Options: Sendable {
        /// Record the location of every value (used for definitions; off for response bodies).
        public var recordsLocations = false
        /// Treat a key that appears twice in one object as an error instead of keeping the last.
        public var rejectsDuplicateKeys = false
        public var maximumDepth = 256
        /// Locations are recorded down to this depth and for at most `maximumLocations` values: enough to point
        /// at any field of a definition, while a large or deeply nested document costs no more than its size.
        /// A value past either limit is reported at its nearest recorded ancestor.
        public var maximumLocationDepth = 16
        public var maximumLocations = 50_000

        public init(recordsLocations: Bool = false, rejectsDuplicateKeys: Bool = false) {
            self.recordsLocations = recordsLocations
            self.rejectsDuplicateKeys = rejectsDuplicateKeys
        }
    }

    public struct Document: Sendable {
        public var value: JSONValue
        public var locations: [JSONPath: SourceLocation]
    }

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try parse(Array(text.utf8), options: Options()).value
    }

    public static func parse(_ bytes: [UInt8], options: Options = Options()) throws(JSONSyntaxError) -> Document {
        var parser = JSONParser(bytes: bytes, options: options)
        parser.skipWhitespace()
        let value = try parser.parseValue(path: .root, depth: 0)
        parser.skipWhitespace()
        if parser.index < bytes.count {
            throw parser.error("unexpected text after the end of the JSON value")
        }
        return Document(value: value, locations: parser.locations)
    }

    private let bytes: [UInt8]
    private let options: Options
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private var locations: [JSONPath: SourceLocation] = [:]

    private init(bytes: [UInt8], options: Options) {
        self.bytes = bytes
        self.options = options
    }

    private var location: SourceLocation {
        SourceLocation(line: line, column: index - lineStart + 1)
    }

    private func error(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(location: location, message: message)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0D: index += 1
            case 0x0A:
                index += 1
                line += 1
                lineStart = index
            default: return
            }
        }
    }

    /// Whether values at `depth` get their path and location recorded.
    private func recording(_ depth: Int) -> Bool {
        options.recordsLocations && depth <= options.maximumLocationDepth && locations.count < options.maximumLocations
    }

    private func describeCurrent() -> String {
        guard index < bytes.count else { return "the end of the text" }
        let byte = bytes[index]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func parseValue(path: JSONPath, depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth < options.maximumDepth else { throw error("nesting is deeper than \(options.maximumDepth) levels") }
        guard index < bytes.count else { throw error("expected a value but the text ended") }
        if recording(depth), locations.count < options.maximumLocations { locations[path] = location }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(path: path, depth: depth)
        case UInt8(ascii: "["): return try parseArray(path: path, depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default:
            throw error("expected a value but found \(describeCurrent())")
        }
    }

    private mutating func expectLiteral(_ literal: String) throws(JSONSyntaxError) {
        let start = index
        var offset = 0
        for byte in literal.utf8 {
            guard start + offset < bytes.count, bytes[start + offset] == byte else {
                throw error("expected a value but found \(describeCurrent())")
            }
            offset += 1
        }
        index += offset
    }

    private mutating func parseObject(path: JSONPath, depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected a quoted key but found \(describeCurrent())")
            }
            let keyLocation = location
            let key = try parseString()
            if options.rejectsDuplicateKeys, members[key] != nil {
                throw JSONSyntaxError(location: keyLocation, message: "the key \"\(key)\" appears twice in one object")
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after the key \"\(key)\" but found \(describeCurrent())")
            }
            index += 1
            skipWhitespace()
            let childPath = recording(depth + 1) ? path.appending(key) : path
            members[key] = try parseValue(path: childPath, depth: depth + 1)
            skipWhitespace()
            guard index < bytes.count else { throw error("the object is not closed: expected ',' or '}'") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            throw error("expected ',' or '}' but found \(describeCurrent())")
        }
    }

    private mutating func parseArray(path: JSONPath, depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            let childPath = recording(depth + 1) ? path.appending(items.count) : path
            items.append(try parseValue(path: childPath, depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw error("the array is not closed: expected ',' or ']'") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            throw error("expected ',' or ']' but found \(describeCurrent())")
        }
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let s = String(decoding: bytes[start..<index], as: UTF8.self)
                index += 1
                return s
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("a string contains a raw control character; escape it (for example \\n)") }
            index += 1
        }
        var scalars = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: scalars, as: UTF8.self)
            }
            if byte < 0x20 { throw error("a string contains a raw control character; escape it (for example \\n)") }
            if byte != UInt8(ascii: "\\") {
                scalars.append(byte)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append(0x22)
            case UInt8(ascii: "\\"): scalars.append(0x5C)
            case UInt8(ascii: "/"): scalars.append(0x2F)
            case UInt8(ascii: "b"): scalars.append(0x08)
            case UInt8(ascii: "f"): scalars.append(0x0C)
            case UInt8(ascii: "n"): scalars.append(0x0A)
            case UInt8(ascii: "r"): scalars.append(0x0D)
            case UInt8(ascii: "t"): scalars.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800..<0xDC00).contains(code) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                    else { throw error("a \\u escape starts a surrogate pair that is not completed") }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("invalid low surrogate in a \\u escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("a \\u escape names no Unicode character") }
                scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                index -= 1
                throw error("invalid escape '\\\(Character(Unicode.Scalar(escape)))' in a string")
            }
        }
        throw error("a string is not closed: expected '\"' before the end of the text")
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("a \\u escape needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("a \\u escape needs four hex digits")
            }
            value = value * 16 + digit
            index += 1
        }
        return value
    }

    /// The longest integer kept exactly; longer ones are refused rather than rounded.
    static let maximumIntegerDigits = 100

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("a number needs digits after '-'") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw error("a number may not start with a leading zero") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("a number needs digits after '.'") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("a number needs digits in its exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger {
            if let int = Int64(text) { return .int(int) }
            // Exact, not rounded: ids beyond 64 bits go back to their participant digit for digit.
            guard text.utf8.count <= Self.maximumIntegerDigits else {
                throw JSONSyntaxError(
                    location: SourceLocation(line: line, column: start - lineStart + 1),
                    message: "the integer has more than \(Self.maximumIntegerDigits) digits; send a number this long as a string")
            }
            return .bigInteger(text)
        }
        guard let double = Double(text), double.isFinite else {
            throw JSONSyntaxError(
                location: SourceLocation(line: line, column: start - lineStart + 1),
                message: "the number \(text) is too large to represent; send it as a string")
        }
        return .double(double)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
