import Foundation

/// libFuzzer entry: the bytes are the lines of an export file after its header and one definition line (a two-step
/// saga). `skald import`'s check must accept or refuse every file with a located problem; and every run it accepts
/// must be one the engine can drive: its machine's rules hold, so `serve` never traps on an imported run. An accepted
/// run is driven a few transitions, as the engine would, to prove it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var lines = [Array(FuzzImport.header.utf8), Array(FuzzImport.definitionLine.utf8)]
    lines += bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
    let checked: StoreTransfer.Checked
    do {
        checked = try StoreTransfer.check(lines: lines)
    } catch let error as TransferError {
        guard error.line >= 1, error.line <= lines.count, !error.message.isEmpty else { fatalError("an unlocated problem: \(error)") }
        return 0
    } catch {
        fatalError("the check threw something other than a located problem: \(error)")
    }
    let machine = FuzzImport.machine
    var number = 0
    for line in lines {
        number += 1
        guard case .run(let exported)? = try? TransferFormat.record(line, line: number) else { continue }
        let state = exported.run.state
        guard machine.problems(in: state).isEmpty else { fatalError("the check accepted a run the engine would refuse: line \(number)") }
        guard !state.status.isTerminal else { continue }
        // What the driver does first with a stored run: resend what was in flight, then send what is due.
        var now = Date(timeIntervalSince1970: 1_800_000_000)
        var current = state
        for index in current.inFlightSteps {
            current = machine.resendInterruptedAttempt(current, step: index, at: now).state
            current = machine.finishAttempt(
                current, step: index, outcome: .failed(AttemptFailure(kind: .status, reason: "HTTP 503", isRetryable: true)),
                duration: .milliseconds(1), at: now, jitterSample: 0.5
            ).state
        }
        for _ in 0..<8 {
            _ = machine.deadlinePassed(current, at: now)
            guard let index = current.dueSteps(at: .distantFuture).first else { break }
            now = max(now, current.steps[index].dueAt ?? now)
            current = machine.beginAttempt(current, step: index, at: now).state
            current = machine.finishAttempt(
                current, step: index, outcome: .succeeded(StepResponse(status: 200, body: ["id": "x"])), duration: .milliseconds(1), at: now,
                jitterSample: 0.5
            ).state
        }
    }
    _ = checked
    return 0
}

enum FuzzImport {
    static let definition = try! DefinitionParser.parse(Array("""
        { "name": "pair", "version": 1, "defaults": { "retry": { "maxAttempts": 3 } }, "steps": [
            { "name": "a", "request": { "method": "POST", "url": "http://127.0.0.1:1/a" },
              "compensation": { "method": "DELETE", "url": "http://127.0.0.1:1/a" } },
            { "name": "b", "request": { "method": "POST", "url": "http://127.0.0.1:1/b" } } ] }
        """.utf8))
    static let machine = SagaMachine(saga: definition)
    static let header = TransferFormat.line(.header(TransferFormat.Header(exportedAt: Date(timeIntervalSince1970: 1_800_000_000), source: "fuzz")))
    static let definitionLine = TransferFormat.line(
        .definition(
            StoredDefinition(hash: definition.contentHash, name: "pair", version: 1, document: definition.document, createdAt: Date(timeIntervalSince1970: 0)),
            registered: true))
}
