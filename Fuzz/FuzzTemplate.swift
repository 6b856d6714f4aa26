

/// libFuzzer entry: the bytes are a template string, optionally followed by a NUL byte and a JSON value used as
/// the run's input and as an earlier step's response. Parsing either succeeds or throws; rendering a parsed
/// template either succeeds or throws; nothing traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
    let text = String(decoding: bytes[..<split], as: UTF8.self)
    let value = split < bytes.endIndex ? (try? JSONParser.parse(Array(bytes[(split + 1)...])).value) ?? .null : .null
    guard let template = try? TemplateString(parsing: text) else { return 0 }
    let context = TemplateContext(
        input: value, runID: "R1", env: ["URL": "http://127.0.0.1:1", "KEY": "secret-value"],
        responses: ["a": StepResponse(status: 201, body: value), "b-2": StepResponse(status: 404, body: .null)])
    _ = try? context.render(template)
    _ = try? context.render(template, encodingForURL: true)
    _ = try? context.masked.render(template, encodingForURL: true)
    _ = try? context.render(TemplateValue.object(["x": .string(template), "y": .array([.string(template), .literal(value)])]))
    _ = context.maskingEnvironment(in: text, names: ["URL", "KEY"])
    return 0
}
