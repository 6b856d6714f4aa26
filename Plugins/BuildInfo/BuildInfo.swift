import Foundation
import PackagePlugin

/// Records the commit the `skald` binary is built from, for `skald --version`: `BuildInfo.commit` is the commit's
/// short hash (with `-modified` when tracked files differ from it), or `unknown` outside a git checkout.
///
/// A prebuild command runs before every build; it rewrites the file only when the commit changed, so an unchanged
/// commit recompiles nothing.
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildInfo")
        let script = #"""
            set -e
            mkdir -p "$1"
            commit=$(git -C "$2" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            if [ "$commit" != unknown ] && [ -n "$(git -C "$2" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
              commit="$commit-modified"
            fi
            text="enum BuildInfo { static let commit = \"$commit\" }"
            [ "$(cat "$1/BuildInfo.swift" 2>/dev/null)" = "$text" ] || printf '%s\n' "$text" > "$1/BuildInfo.swift"
            """#
        return [
            .prebuildCommand(
                displayName: "Recording the commit skald is built from",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "sh", output.path, context.package.directoryURL.path],
                outputFilesDirectory: output)
        ]
    }
}
