import Foundation
import SkaldCore

/// The web console: one page (HTML, CSS and JavaScript, nothing fetched from elsewhere) that reads the API.
public enum ConsolePage {
    /// The page's Content-Security-Policy: its one script is allowed by its SHA-256 hash, so no other script runs,
    /// inline event handlers and injected `<script>` elements included.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src '\(scriptHash)'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// `sha256-…` of the text of the page's one `<script>` element, as CSP hashes it.
    static let scriptHash: String = {
        let html = ConsolePage.html
        guard let open = html.range(of: "<script>"), let close = html.range(of: "</script>", range: open.upperBound..<html.endIndex) else {
            return "sha256-"
        }
        let script = String(html[open.upperBound..<close.lowerBound])
        return "sha256-" + Data(SHA256.hash(Array(script.utf8))).base64EncodedString()
    }()
}

extension ConsolePage {
    public static let html = String(decoding: PackageResources.console_html, as: UTF8.self).trimmingCharacters(in: .newlines)
}
