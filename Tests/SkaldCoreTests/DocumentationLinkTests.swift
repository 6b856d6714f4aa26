import Foundation
import Testing
import SkaldTestSupport

/// The README is the front door and `docs/` holds the rest: every link between them (and to files of the
/// repository) must lead somewhere, anchors included, and every page of `docs/` must be reachable from the README.
@Suite(.timeLimit(.minutes(10))) struct DocumentationLinkTests {
    static let root = packageRoot

    /// README.md and every Markdown page of docs/.
    static func pages() throws -> [URL] {
        let docs = root.appendingPathComponent("docs")
        let names = try FileManager.default.contentsOfDirectory(atPath: docs.path).filter { $0.hasSuffix(".md") }.sorted()
        return [root.appendingPathComponent("README.md")] + names.map { docs.appendingPathComponent($0) }
    }

    /// The Markdown outside fenced code blocks.
    static func prose(_ text: String) -> [String] {
        var inFence = false
        return text.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line in
            if line.hasPrefix("```") {
                inFence.toggle()
                return nil
            }
            return inFence ? nil : String(line)
        }
    }

    /// Every `](target)` link target of the prose, inline code spans left out.
    static func links(_ text: String) -> [String] {
        prose(text).flatMap { line -> [String] in
            let withoutCode = line.replacingOccurrences(of: "`[^`]*`", with: "", options: .regularExpression)
            let pattern = try! NSRegularExpression(pattern: #"\]\(([^)\s]+)\)"#)
            let range = NSRange(withoutCode.startIndex..., in: withoutCode)
            return pattern.matches(in: withoutCode, range: range).map { String(withoutCode[Range($0.range(at: 1), in: withoutCode)!]) }
        }
    }

    /// GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered.
    static func anchors(_ text: String) -> Set<String> {
        var seen: [String: Int] = [:]
        var anchors: Set<String> = []
        for line in prose(text) where line.hasPrefix("#") {
            let title = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
            let slug = String(
                title.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" || $0 == " " }
                    .map(Character.init)
            ).replacingOccurrences(of: " ", with: "-")
            let count = seen[slug, default: 0]
            seen[slug] = count + 1
            anchors.insert(count == 0 ? slug : "\(slug)-\(count)")
        }
        return anchors
    }

    @Test func everyLinkLeadsToAFileAndEveryAnchorToAHeading() throws {
        var broken: [String] = []
        var checked = 0
        for page in try Self.pages() {
            let text = try String(contentsOf: page, encoding: .utf8)
            for link in Self.links(text) where !link.hasPrefix("http://") && !link.hasPrefix("https://") {
                checked += 1
                let parts = link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let target = parts[0].isEmpty ? page : page.deletingLastPathComponent().appendingPathComponent(parts[0]).standardizedFileURL
                let name = "\(page.lastPathComponent): (\(link))"
                guard FileManager.default.fileExists(atPath: target.path) else {
                    broken.append("\(name): no file \(target.path)")
                    continue
                }
                if parts.count == 2, target.pathExtension == "md" {
                    let anchors = Self.anchors(try String(contentsOf: target, encoding: .utf8))
                    if !anchors.contains(parts[1]) { broken.append("\(name): \(target.lastPathComponent) has no heading #\(parts[1])") }
                }
            }
        }
        #expect(broken.isEmpty, "\(broken.joined(separator: "\n"))")
        #expect(checked > 20, "only \(checked) links were found: is the link pattern still right?")
    }

    @Test func everyPageOfDocsIsLinkedFromTheReadme() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let linked = Set(Self.links(readme).map { $0.split(separator: "#").first.map(String.init) ?? $0 })
        let unlinked = try Self.pages().dropFirst().map { "docs/" + $0.lastPathComponent }.filter { !linked.contains($0) }
        #expect(unlinked.isEmpty, "pages of docs/ the README does not link to: \(unlinked)")
    }

    @Test func theAnchorsFollowGitHubsRules() {
        let anchors = Self.anchors("# Protecting participants: circuit breakers, bulkheads and rate limits\n## On PostgreSQL, with one to three nodes\n## Logs\n## Logs\n```\n# not a heading\n```")
        #expect(anchors == ["protecting-participants-circuit-breakers-bulkheads-and-rate-limits", "on-postgresql-with-one-to-three-nodes", "logs", "logs-1"])
        #expect(Self.links("see [a](docs/a.md#x) and `[b](nope)`\n```\n[c](code.md)\n```") == ["docs/a.md#x"])
    }
}
