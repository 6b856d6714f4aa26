import Foundation
import SkaldCore

/// The run lines of a checked file, read one at a time inside the import's transaction.
final class RunLineReader: @unchecked Sendable {
    // One transaction calls `next` at a time; the lock makes that a rule rather than a hope.
    private let lock = NSLock()
    private var lines: any IteratorProtocol<[UInt8]>
    private var number = 0
    private let checked: StoreTransfer.Checked
    private let definitions: [String: SagaDefinition]
    private var machines: [String: SagaMachine] = [:]
    private var readCallbacks: [StoredCallback] = []
    /// The callbacks of the runs read so far, stored and not yet applied where they were exported.
    var callbacks: [StoredCallback] { lock.withLock { readCallbacks } }

    init(lines: some Sequence<[UInt8]>, checked: StoreTransfer.Checked) {
        self.lines = lines.makeIterator()
        self.checked = checked
        definitions = Dictionary(checked.definitions.map { ($0.definition.contentHash, $0.definition) }, uniquingKeysWith: { first, _ in first })
    }

    func next() throws -> ExportedRun? {
        try lock.withLock {
            while let bytes = lines.next() {
                number += 1
                guard bytes.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }),
                    case .run(var exported) = try TransferFormat.record(bytes, line: number)
                else { continue }
                guard let document = checked.document(exported.run.definitionHash) else {
                    throw TransferError(line: number, path: JSONPath().appending("run").appending("definitionHash"), message: "the file changed since it was checked")
                }
                // Checked again as it is read: a line changed since the check is refused, not imported.
                try StoreTransfer.checkRun(exported, line: number, definitions: definitions, machines: &machines)
                exported.run.definitionDocument = document
                readCallbacks += exported.callbacks
                return exported
            }
            return nil
        }
    }
}

/// The lines of a file, read a megabyte at a time: each line's bytes without its newline.
public struct FileLines: Sequence, Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public func makeIterator() -> Iterator { Iterator(handle: FileHandle(forReadingAtPath: path)) }

    public struct Iterator: IteratorProtocol {
        let handle: FileHandle?
        var buffer: [UInt8] = []
        var start = 0
        /// Where the search for the next newline goes on from: the bytes before it are known to hold none, so a
        /// long line is scanned once, not once per chunk read (which made a 100 MB line take minutes).
        var scanned = 0
        var done = false

        public mutating func next() -> [UInt8]? {
            while true {
                if let newline = buffer[Swift.max(start, scanned)...].firstIndex(of: 0x0A) {
                    let line = Array(buffer[start..<newline])
                    start = newline + 1
                    scanned = start
                    return line
                }
                scanned = buffer.count
                if done {
                    guard start < buffer.count else { return nil }
                    let line = Array(buffer[start...])
                    start = buffer.count
                    return line
                }
                if start > 0 {
                    buffer.removeFirst(start)
                    scanned -= start
                    start = 0
                }
                let chunk = handle?.readData(ofLength: 1 << 20) ?? Data()
                if chunk.isEmpty { done = true } else { buffer.append(contentsOf: chunk) }
            }
        }
    }
}
