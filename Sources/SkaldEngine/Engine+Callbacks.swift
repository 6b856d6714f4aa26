import Foundation
import SkaldCore

/// Callbacks from participants: stored first (the participant's `200` means committed), then handed to the run
/// wherever it is driven, as an operator's action is. A hand-over that does not arrive loses nothing: the run's driver
/// reads the stored callbacks when it takes the run up, when the step's answer comes, and before the wait can time out.
extension Engine {
    /// Stores what a participant posted to `token`'s URL and, when it was stored now, hands it to the run.
    public func receiveCallback(token: String, signal: CallbackSignal) async throws -> CallbackReceipt {
        let receipt = try await store.receiveCallback(token: token, signal: signal, at: clock.now())
        configuration.metrics.callbackReceived(receipt)
        if case .stored(let callback) = receipt { deliver(callback, signal) }
        return receipt
    }

    /// Applies a stored callback to its run now, without making the participant wait for it.
    func deliver(_ callback: StoredCallback, _ signal: CallbackSignal) {
        let at = (signal == .heartbeat ? callback.heartbeatAt : callback.receivedAt) ?? clock.now()
        let action: OperatorAction
        switch signal {
        case .succeeded(let output):
            action = .callback(step: callback.step, attempt: callback.attempt, status: "succeeded", output: output.jsonText, error: nil, receivedAt: at.timeIntervalSince1970)
        case .failed(let error):
            action = .callback(step: callback.step, attempt: callback.attempt, status: "failed", output: nil, error: error, receivedAt: at.timeIntervalSince1970)
        case .heartbeat:
            action = .callback(step: callback.step, attempt: callback.attempt, status: "heartbeat", output: nil, error: nil, receivedAt: at.timeIntervalSince1970)
        }
        let logger = logger
        Task {
            do {
                _ = try await operate(callback.runID, action)
            } catch let error as EngineError where error.code == .conflict {
                // Not applicable now (the request's answer has not come yet): the driver applies it when it does.
                logger.debug("callback stored, applied later", metadata: ["run_id": "\(callback.runID)", "detail": "\(error.message)"])
            } catch {
                logger.info(
                    "callback stored; the run's driver applies it when it next looks", metadata: ["run_id": "\(callback.runID)", "error": "\(error)"])
            }
        }
    }
}
