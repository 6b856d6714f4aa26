import Foundation
import SkaldCore

/// What a step that waits needs when it begins, rendered from the run: an approval's prompt, a sleep's end.
/// The HTTP steps' runner is the `StepExecutor`; this is the runner of the others.
enum WaitRunner {
    struct Problem: Error {
        var reason: String
    }

    static func begin(_ action: StepAction, context: TemplateContext, at now: Date) -> Result<StepWait, Problem> {
        switch action {
        case .call, .callback:
            return .failure(Problem(reason: "an HTTP step's wait begins when its request is accepted"))
        case .child:
            return .failure(Problem(reason: "a child saga's wait begins when the driver has started the child (RunDriver.moveChild)"))
        case .approval(let approval):
            var prompt: String?
            if let template = approval.prompt {
                do {
                    // Shown to people: the environment's values stay out of it.
                    prompt = try context.masked.render(template)
                } catch {
                    return .failure(Problem(reason: "cannot write the approval's prompt: \(error.message)"))
                }
            }
            return .success(StepWait(kind: .approval, since: now, until: now.addingTimeInterval(approval.timeout.seconds), prompt: prompt))
        case .sleep(.duration(let duration)):
            return .success(StepWait(kind: .sleep, since: now, until: now.addingTimeInterval(duration.seconds)))
        case .sleep(.until(let template)):
            let text: String
            do {
                text = try context.render(template)
            } catch {
                return .failure(Problem(reason: "cannot work out when to sleep until: \(error.message)"))
            }
            guard let until = DefinitionParser.rfc3339(text) else {
                return .failure(
                    Problem(reason: "sleepUntil \(template.source) gave \"\(text)\", which is not an RFC 3339 time such as 2026-12-24T18:00:00Z"))
            }
            guard until <= SagaMachine.latestStoredTime else {
                return .failure(Problem(reason: "sleepUntil \(template.source) gave \(text), after the year 9999"))
            }
            // A time already past ends the sleep at once.
            return .success(StepWait(kind: .sleep, since: now, until: max(now, until)))
        }
    }
}
