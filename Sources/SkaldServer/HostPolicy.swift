import Foundation
/// The `Host` values a server answers to: every IP address literal (a rebound name never arrives as one), `localhost`
/// and its subdomains, the name it listens on, and the names an operator adds (`*.example.com` for a domain's
/// subdomains, `*` for any name, which turns the check off).
public struct HostPolicy: Sendable, Equatable {
    var names: Set<String>
    /// `.example.com` for `*.example.com`.
    var suffixes: [String]
    var allowsAnyName: Bool

    /// Addresses, `localhost` and its subdomains only.
    public static let loopback = HostPolicy(names: [], suffixes: [], allowsAnyName: false)

    private init(names: Set<String>, suffixes: [String], allowsAnyName: Bool) {
        self.names = names
        self.suffixes = suffixes
        self.allowsAnyName = allowsAnyName
    }

    /// - Parameters:
    ///   - listenHost: the address or name the server listens on (`--host`).
    ///   - allowed: further names (`--allowed-host`).
    /// - Throws: `HostPolicy.Problem` for an entry that is not a host name.
    public init(listenHost: String, allowed: [String] = []) throws {
        names = []
        suffixes = []
        allowsAnyName = false
        if let name = Self.normalized(listenHost) { names.insert(name) }
        for entry in allowed {
            let trimmed = entry.trimmingCharacters(in: .whitespaces)
            if trimmed == "*" {
                allowsAnyName = true
                continue
            }
            let isWildcard = trimmed.hasPrefix("*.")
            guard let normalized = Self.normalized(isWildcard ? String(trimmed.dropFirst(2)) : trimmed), Self.isHostName(normalized) else {
                throw Problem(
                    message: "\"\(entry)\" is not a host name; give a name such as skald.example.com, *.example.com for its subdomains, or * for any")
            }
            if isWildcard { suffixes.append("." + normalized) } else { names.insert(normalized) }
        }
    }

    public struct Problem: Error, Sendable {
        public var message: String
    }

    /// Whether a request with this `Host` (or `:authority`) is answered; one without any (HTTP/1.0, which no browser
    /// sends) is.
    public func allows(authority: String?) -> Bool {
        guard let authority, !authority.isEmpty else { return true }
        if authority.hasPrefix("[") { return authority.contains("]") }  // an IPv6 literal
        var host = Substring(authority)
        if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard port.allSatisfy(\.isNumber) else { return false }
            host = host[..<colon]
        }
        guard let name = Self.normalized(String(host)) else { return false }
        if Self.isIPv4(name) || name == "localhost" || name.hasSuffix(".localhost") || allowsAnyName || names.contains(name) { return true }
        return suffixes.contains { name.hasSuffix($0) }
    }

    static func normalized(_ host: String) -> String? {
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name.isEmpty ? nil : name
    }

    static func isIPv4(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) }
    }

    static func isHostName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 253
            && name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCIILetterOrDigit || $0 == "-" || $0 == "_" }
            }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
    var isASCIILetterOrDigit: Bool { isASCII && (isLetter || isNumber) }
}
