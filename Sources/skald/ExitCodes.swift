import ArgumentParser
import SkaldCore

/// Exit codes that mean something to scripts.
enum Exit {
    static let completed = ExitCode(0)
    static let failure = ExitCode(1)
    static let invalid = ExitCode(2)
    static let compensated = ExitCode(3)
    static let compensationFailed = ExitCode(4)
    static let stuck = ExitCode(5)
    static let abandoned = ExitCode(6)

    static func forStatus(_ status: RunStatus) -> ExitCode {
        switch status {
        case .completed: completed
        case .compensated: compensated
        case .compensationFailed: compensationFailed
        case .stuck: stuck
        case .abandoned: abandoned
        case .running, .compensating: failure
        }
    }
}
