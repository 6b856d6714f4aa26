

/// libFuzzer entry: the bytes are a saga definition, optionally followed by a NUL byte and a run's input.
/// Every definition either validates or is refused with located problems; a valid one builds its machine and
/// plan, and checks the input against its inputSchema. Any crash, hang or runaway allocation is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
    let definitionBytes = Array(bytes[..<split])
    let inputBytes = split < bytes.endIndex ? Array(bytes[(split + 1)...]) : []

    // The JSON parser alone: what parses serialises to text that parses to the same value.
    if let value = try? JSONParser.parse(definitionBytes).value {
        guard let again = try? JSONParser.parse(value.jsonText), again == value else {
            fatalError("JSON round trip changed the value: \(value.jsonText)")
        }
    }

    do {
        let saga = try DefinitionParser.parse(definitionBytes, file: "fuzz.json")
        let machine = SagaMachine(saga: saga)
        _ = Planner.plan(saga, failAt: nil)
        if let input = try? JSONParser.parse(inputBytes).value {
            _ = try? machine.checkStart(input: input, environment: ["URL": "http://127.0.0.1:1"])
        }
    } catch {
        guard !error.problems.isEmpty else { fatalError("refused without a problem") }
        for problem in error.problems where problem.path == nil && problem.location == nil {
            fatalError("a problem with neither a path nor a location: \(problem.message)")
        }
    }
    return 0
}
