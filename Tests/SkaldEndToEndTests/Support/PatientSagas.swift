import Foundation
import SkaldDemo
import SkaldTestSupport

/// The example sagas with every timeout set to five minutes, for tests that hold a participant's answers: on a busy
/// machine a held call can outlast the examples' one- and two-second timeouts, and a timeout then changes the outcome
/// the test is about. Tests that are about timeouts keep the examples as they are.
enum PatientSagas {
    static func patient(_ text: String) -> String { DemoSagas.withLongTimeouts(text) }

    /// A patient copy of one example (`checkout.json`, say) in `folder`; returns its path.
    static func copy(_ name: String, in folder: URL) throws -> String {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("Sagas").appendingPathComponent(name), encoding: .utf8)
        let file = folder.appendingPathComponent("patient-\(name)")
        try patient(text).write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// A folder in `folder` with a patient copy of every example, for `skald serve --sagas`.
    static func folder(in folder: URL) throws -> String {
        let sagas = folder.appendingPathComponent("patient-sagas")
        try FileManager.default.createDirectory(at: sagas, withIntermediateDirectories: true)
        let examples = packageRoot.appendingPathComponent("Sagas")
        for name in try FileManager.default.contentsOfDirectory(atPath: examples.path) where name.hasSuffix(".json") {
            let text = try String(contentsOf: examples.appendingPathComponent(name), encoding: .utf8)
            try patient(text).write(to: sagas.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return sagas.path
    }
}
